"""Per-process connections (Redis, the autocommit engine for writes) and the post-commit handoff.

Created once by the app factory and kept on `app.extensions`, so requests never connect.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app, g
from sqlalchemy import Connection, Engine

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

    def connection(self) -> Connection:
        """The request's autocommit connection: the session check of the token and the view's
        single statements (task writes, the hot reads) share one pool checkout, returned by
        `release_connection` at teardown."""
        conn = g.get("autocommit_connection")
        if conn is None:
            conn = g.autocommit_connection = self.autocommit.connect()
        return conn


def release_connection(_exc=None) -> None:
    conn = g.pop("autocommit_connection", None)
    if conn is not None:
        conn.close()


def get_runtime() -> Runtime:
    return current_app.extensions["taskqueue"]
