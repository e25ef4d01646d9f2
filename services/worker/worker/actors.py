"""One Dramatiq actor per priority queue, all running the same executor.

Separate actors let Dramatiq order prefetched messages by priority inside one process,
so a worker serving several queues still runs critical work first.
"""
from __future__ import annotations

import dramatiq

from shared.routing import ACTOR_PRIORITY, QUEUES, actor_name

from .execution import Executor


def declare(broker: dramatiq.Broker, executor: Executor) -> None:
    for queue in QUEUES:
        dramatiq.Actor(
            executor.execute,
            broker=broker,
            actor_name=actor_name(queue),
            queue_name=queue,
            priority=ACTOR_PRIORITY[queue],
            options={},
        )
