"""Dramatiq broker setup and task messages.

A message carries only the task id; Postgres holds everything else. The Redis message id
is the task id, so the scheduler can ask Redis whether a queued task's message still exists
(and re-send it when Redis lost it).
"""
from __future__ import annotations

import uuid
from typing import Iterable

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from .routing import QUEUES, actor_name

NAMESPACE = "dramatiq"


class TaskBroker(RedisBroker):
    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        if delay is not None:
            raise ValueError("delayed tasks wait in Postgres (scheduled_at), not in Redis")
        message = message.copy(options={"redis_message_id": message.message_id})
        self.emit_before("enqueue", message, delay)
        self.do_enqueue(message.queue_name, message.message_id, message.encode())
        self.emit_after("enqueue", message, delay)
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
        options={},
        message_id=str(task_id),
    )


def enqueue_task(broker: TaskBroker, task_id: uuid.UUID | str, queue: str) -> None:
    broker.enqueue(task_message(task_id, queue))


def missing_messages(client: redis.Redis, tasks: Iterable[tuple[str, str]]) -> list[str]:
    """Return the ids of (task_id, queue) pairs whose message is no longer in Redis."""
    tasks = list(tasks)
    pipe = client.pipeline(transaction=False)
    for task_id, queue in tasks:
        pipe.hexists(f"{NAMESPACE}:{queue}.msgs", task_id)
    return [task_id for (task_id, _), present in zip(tasks, pipe.execute()) if not present]


def queue_depths(client: redis.Redis) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(f"{NAMESPACE}:{queue}")
    return dict(zip(QUEUES, pipe.execute()))
