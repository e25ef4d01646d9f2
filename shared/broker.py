"""Dramatiq broker setup and task messages.

A message carries only the task id; Postgres holds everything else. The Redis message id is
the task id, so the scheduler can ask Redis whether a queued task's message still exists and
re-send it when Redis lost it.

Producers write messages in the Redis layout of Dramatiq's Redis broker (a hash of message
bodies and a list of ids per queue, see its dispatch.lua) inside their own pipelines, batched
with event publishing, and ring the queue's doorbell. Idle consumers block on that doorbell
instead of polling, so a new task is picked up at once and idle workers cost nothing.
"""
from __future__ import annotations

import uuid
from typing import Iterable

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer

from .routing import QUEUES, actor_name

NAMESPACE = "dramatiq"
DOORBELL_DEPTH = 32  # rings kept for consumers that are busy when they arrive


def queue_key(queue: str) -> str:
    return f"{NAMESPACE}:{queue}"


def messages_key(queue: str) -> str:
    return f"{NAMESPACE}:{queue}.msgs"


def doorbell_key(queue: str) -> str:
    return f"taskqueue:doorbell:{queue}"


class DoorbellConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, waiting on the queue's doorbell when the queue is empty."""

    def __init__(self, broker, queue_name, prefetch, idle_timeout_ms):
        # The parent's own backoff sleep is reduced to nothing; the doorbell wait replaces it.
        super().__init__(broker, queue_name, prefetch, timeout=1)
        self.idle_timeout_s = max(0.01, idle_timeout_ms / 1000)

    def __next__(self):
        message = super().__next__()
        if message is None and not self.message_cache:
            try:
                self.broker.client.blpop([doorbell_key(self.queue_name)], timeout=self.idle_timeout_s)
            except redis.ConnectionError as exc:
                raise dramatiq.errors.ConnectionClosed(exc) from None
        return message


class TaskBroker(RedisBroker):
    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 1000) -> DoorbellConsumer:
        return DoorbellConsumer(self, queue_name, prefetch, timeout)

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        if delay is not None:
            raise ValueError("delayed tasks wait in Postgres (scheduled_at), not in Redis")
        enqueue_task(self.client, message.message_id, message.queue_name)
        return message


def make_broker(redis_url: str, middleware: list | None = None) -> TaskBroker:
    broker = TaskBroker(url=redis_url, namespace=NAMESPACE, middleware=middleware or [])
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def task_message(task_id: uuid.UUID | str, queue: str) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=queue,
        actor_name=actor_name(queue),
        args=(str(task_id),),
        kwargs={},
        options={"redis_message_id": str(task_id)},
        message_id=str(task_id),
    )


def add_message(pipe: redis.client.Pipeline, task_id: uuid.UUID | str, queue: str) -> None:
    """Queue the task's message (as Dramatiq's enqueue does) and ring the doorbell, on `pipe`."""
    task_id = str(task_id)
    pipe.hset(messages_key(queue), task_id, task_message(task_id, queue).encode())
    pipe.rpush(queue_key(queue), task_id)
    pipe.lpush(doorbell_key(queue), 1)
    pipe.ltrim(doorbell_key(queue), 0, DOORBELL_DEPTH - 1)


def enqueue_task(client: redis.Redis, task_id: uuid.UUID | str, queue: str) -> None:
    pipe = client.pipeline(transaction=True)  # MULTI/EXEC: never a body without its list entry
    add_message(pipe, task_id, queue)
    pipe.execute()


def missing_messages(client: redis.Redis, tasks: Iterable[tuple[str, str]]) -> list[str]:
    """Return the ids of (task_id, queue) pairs whose message is no longer in Redis."""
    tasks = list(tasks)
    pipe = client.pipeline(transaction=False)
    for task_id, queue in tasks:
        pipe.hexists(messages_key(queue), task_id)
    return [task_id for (task_id, _), present in zip(tasks, pipe.execute()) if not present]


def queue_depths(client: redis.Redis) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue_key(queue))
    return dict(zip(QUEUES, pipe.execute()))
