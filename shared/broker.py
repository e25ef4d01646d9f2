"""Dramatiq broker setup and task messages.

A message carries only the task id; Postgres holds everything else. Each send of a task gets
its own message id, derived from the task id and the `enqueued_at` it was sent for
(`message_id`): so the scheduler can ask Redis whether a queued task's current message still
exists (and re-send it when Redis lost it), and the late ack of an earlier message of the same
task (a retry, a hand-back, a recovered lease) can never delete the new one.

Producers write messages in the Redis layout of Dramatiq's Redis broker (a hash of message
bodies and a list of ids per queue, see its dispatch.lua) inside their own pipelines, batched
with event publishing, and ring the queue's doorbell. Idle consumers block on that doorbell
instead of polling, so a new task is picked up at once and idle workers cost nothing.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Iterable

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis

from .group_commit import GroupCommit
from .routing import QUEUES, actor_name

NAMESPACE = "dramatiq"
DOORBELL_DEPTH = 32  # rings kept for consumers that are busy when they arrive
BUSY_WAIT_S = 0.01  # a consumer with messages in flight comes back this often to send their acks
# A worker none of whose consumers called Redis for this long is dead (Dramatiq's default: 60 s).
# Live consumers call it at least every second (the idle wait), so this leaves a wide margin; a
# live worker taken for dead only gets a duplicate message, which its claim turns away.
DEAD_WORKER_MS = 15_000


def queue_key(queue: str) -> str:
    return f"{NAMESPACE}:{queue}"


def messages_key(queue: str) -> str:
    return f"{NAMESPACE}:{queue}.msgs"


def doorbell_key(queue: str) -> str:
    return f"taskqueue:doorbell:{queue}"


class DoorbellConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, waiting on the queue's doorbell when the queue is empty.

    Every producer rings the doorbell, so an idle consumer wakes at once for new work and
    otherwise only looks at its queue every `idle_wait_s` (a safety net for messages put back
    without a ring, e.g. Dramatiq's requeue of a dead worker's messages). While messages are in
    flight we come back every BUSY_WAIT_S, to fetch more as their acks (sent by the worker
    threads, batched) free prefetch room; a consumer that cannot take more work leaves the rings
    to others.
    """

    def __init__(self, broker, queue_name, prefetch, idle_wait_s: float):
        # The parent's own backoff sleep is reduced to nothing; the doorbell wait replaces it.
        super().__init__(broker, queue_name, prefetch, timeout=1)
        self.idle_wait_s = idle_wait_s
        # Worker threads ack their own messages: those acking at once share a round trip.
        self._acks = GroupCommit(self._ack_batch, key=str)

    def _ack_batch(self, _conn, message_ids: list[str]) -> dict:
        self.broker.ack_many(self.queue_name, message_ids)
        return {}

    def ack(self, message) -> None:
        try:
            self._acks.submit(None, message.options["redis_message_id"])
        except redis.ConnectionError as exc:
            raise dramatiq.errors.ConnectionClosed(exc) from None
        finally:
            self.queued_message_ids.discard(message.message_id)

    def __next__(self):
        message = super().__next__()
        if message is not None or self.message_cache:
            return message
        if self.outstanding_message_count >= self.prefetch:
            time.sleep(BUSY_WAIT_S)
            return None
        wait = BUSY_WAIT_S if self.queued_message_ids else self.idle_wait_s
        try:
            self.broker.client.blpop([doorbell_key(self.queue_name)], timeout=wait)
        except redis.ConnectionError as exc:
            raise dramatiq.errors.ConnectionClosed(exc) from None
        return None


class TaskBroker(RedisBroker):
    idle_wait_s = 1.0  # see DoorbellConsumer; make_broker sets it from the settings

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 1000) -> DoorbellConsumer:
        return DoorbellConsumer(self, queue_name, prefetch, self.idle_wait_s)

    def requeue_dead_workers(self) -> None:
        """Put the messages that dead workers fetched but never acknowledged back on their queues.

        A worker prefetches messages (moves them to its ack set) before claiming their tasks; if
        it is killed, its tasks stay `queued` and their messages still exist, so the scheduler's
        lost-message sweep leaves them alone. Dramatiq's own maintenance moves them back, but only
        on a random 0.1% of its Redis calls: minutes on a quiet queue. The scheduler calls this
        every few seconds instead (each `qsize` call runs that maintenance, see below).
        """
        for queue in QUEUES:
            self.do_qsize(queue)

    def _should_do_maintenance(self, command: str) -> int:
        # `qsize` is read-only and used by nothing on the hot path (Dramatiq's join, our
        # requeue_dead_workers): make it the call that always runs maintenance.
        return 1 if command == "qsize" else super()._should_do_maintenance(command)

    def ack_many(self, queue_name: str, message_ids: list[str]) -> None:
        """Dramatiq's ack of each message (its dispatch script, with the arguments its own
        `do_ack` passes), pipelined: one round trip for them all."""
        dispatch, pipe = self.scripts["dispatch"], self.client.pipeline(transaction=False)
        for message_id in message_ids:
            args = ["ack", current_millis(), queue_name, self.broker_id, self.heartbeat_timeout,
                    self.dead_message_ttl, self._should_do_maintenance("ack"), self._max_unpack_size(), message_id]
            dispatch(keys=[self.namespace], args=args, client=pipe)
        pipe.execute()

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        if delay is not None:
            raise ValueError("delayed tasks wait in Postgres (scheduled_at), not in Redis")
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(messages_key(message.queue_name), message.message_id, message.encode())
        pipe.rpush(queue_key(message.queue_name), message.message_id)
        pipe.execute()
        return message


def make_broker(redis_url: str, middleware: list | None = None, idle_wait_ms: int = 1000) -> TaskBroker:
    idle_wait_s = max(0.01, idle_wait_ms / 1000)
    # A socket timeout, so a Redis that stops answering raises instead of hanging a consumer or
    # the scheduler's sweep forever; longer than the doorbell wait, which blocks on purpose.
    client = redis.Redis.from_url(redis_url, socket_timeout=idle_wait_s + 5, socket_connect_timeout=2)
    broker = TaskBroker(client=client, namespace=NAMESPACE, middleware=middleware or [], heartbeat_timeout=DEAD_WORKER_MS)
    broker.idle_wait_s = idle_wait_s
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def message_id(task_id: uuid.UUID | str, enqueued_at: datetime) -> str:
    return f"{task_id}.{int(enqueued_at.timestamp() * 1_000_000)}"


def task_message(task_id: uuid.UUID | str, queue: str, enqueued_at: datetime) -> dramatiq.Message:
    mid = message_id(task_id, enqueued_at)
    return dramatiq.Message(
        queue_name=queue,
        actor_name=actor_name(queue),
        args=(str(task_id),),
        kwargs={},
        options={"redis_message_id": mid},
        message_id=mid,
    )


def add_message(pipe: redis.client.Pipeline, task_id: uuid.UUID | str, queue: str, enqueued_at: datetime) -> None:
    """Queue the task's message (as Dramatiq's enqueue does) and ring the doorbell, on `pipe`."""
    message = task_message(task_id, queue, enqueued_at)
    pipe.hset(messages_key(queue), message.message_id, message.encode())
    pipe.rpush(queue_key(queue), message.message_id)
    pipe.lpush(doorbell_key(queue), 1)
    pipe.ltrim(doorbell_key(queue), 0, DOORBELL_DEPTH - 1)


def enqueue_task(client: redis.Redis, task_id: uuid.UUID | str, queue: str, enqueued_at: datetime) -> None:
    pipe = client.pipeline(transaction=True)  # MULTI/EXEC: never a body without its list entry
    add_message(pipe, task_id, queue, enqueued_at)
    pipe.execute()


def missing_messages(client: redis.Redis, tasks: Iterable[tuple[str, str, datetime]]) -> list[str]:
    """Return the task ids among (task_id, queue, enqueued_at) whose current message is gone."""
    tasks = list(tasks)
    pipe = client.pipeline(transaction=False)
    for task_id, queue, enqueued_at in tasks:
        pipe.hexists(messages_key(queue), message_id(task_id, enqueued_at))
    return [task_id for (task_id, _, _), present in zip(tasks, pipe.execute()) if not present]


def queue_depths(client: redis.Redis) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue_key(queue))
    return dict(zip(QUEUES, pipe.execute()))
