"""Per-process connections (Redis, the autocommit engine for writes) and the post-commit handoff.

Created once by the app factory and kept on `app.extensions`, so requests never connect.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
from flask import current_app, g
from sqlalchemy import Connection, Engine

from shared import transitions
from shared.group_commit import GroupCommit
from shared.handoff import Handoff
from shared.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    handoff: Handoff
    autocommit: Engine  # single-statement writes (transitions): see shared.db.make_engine
    # New tasks of concurrent requests are inserted by one statement (see create_task).
    creates: GroupCommit = field(init=False)

    def __post_init__(self) -> None:
        self.creates = GroupCommit(_insert_tasks, key=lambda values: str(values["id"]))

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


def _insert_tasks(conn: Connection, rows: list[dict]) -> dict:
    return transitions.by_id(transitions.create_many(conn, rows))


def release_connection(_exc=None) -> None:
    conn = g.pop("autocommit_connection", None)
    if conn is not None:
        conn.close()


def get_runtime() -> Runtime:
    return current_app.extensions["taskqueue"]
