"""Per-process connections (Redis, the autocommit engine for writes) and the post-commit handoff.

Created once by the app factory and kept on `app.extensions`, so requests never connect.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app
from sqlalchemy import Engine

from shared.handoff import Handoff
from shared.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    handoff: Handoff
    autocommit: Engine  # single-statement writes (transitions): see shared.db.make_engine

    def after_commit(self, rows) -> None:
        self.handoff.submit(rows)


def get_runtime() -> Runtime:
    return current_app.extensions["taskqueue"]
