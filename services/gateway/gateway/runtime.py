"""Per-process connections to Redis and the broker, plus the event publisher.

Created once by the app factory and kept on `app.extensions`, so requests never connect.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from shared import broker as task_broker
from shared.events import EventPublisher
from shared.handoff import after_commit
from shared.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    broker: task_broker.TaskBroker
    publisher: EventPublisher

    def after_commit(self, rows) -> None:
        after_commit(self.publisher, self.broker, rows)


def get_runtime() -> Runtime:
    return current_app.extensions["taskqueue"]
