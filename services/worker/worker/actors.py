"""One Dramatiq actor per priority queue, all running the same executor.

Separate actors let Dramatiq order prefetched messages by priority inside one process,
so a worker serving several queues still runs critical work first.
"""
from __future__ import annotations

import dramatiq

from shared.routing import ACTOR_PRIORITY, QUEUES, actor_name

from .execution import Executor


class ResendAfterAck(dramatiq.Middleware):
    """Tells the executor when a message is settled, so a handed-back task's new message
    (same id) is sent only after the ack that would otherwise delete it."""

    def __init__(self, executor: Executor):
        self.executor = executor

    def after_ack(self, broker, message) -> None:
        self.executor.message_settled(message.message_id)

    after_nack = after_ack


def declare(broker: dramatiq.Broker, executor: Executor) -> None:
    broker.add_middleware(ResendAfterAck(executor))
    for queue in QUEUES:
        dramatiq.Actor(
            executor.execute,
            broker=broker,
            actor_name=actor_name(queue),
            queue_name=queue,
            priority=ACTOR_PRIORITY[queue],
            options={},
        )
