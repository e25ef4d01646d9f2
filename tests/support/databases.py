"""Throwaway databases for tests and scripts (pytest-free, so scripts import it too)."""
from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.db import sqlalchemy_url


def drop_database(database_url: str, marker: str) -> None:
    """Drop the database of `database_url` (disconnecting its sessions) so that the next
    `shared.migrate` creates and migrates it from scratch. Refuses any database whose name does
    not contain `marker` ("test", "soak"): never a development or production database."""
    url = make_url(sqlalchemy_url(database_url))
    if marker not in (url.database or ""):
        raise RuntimeError(f"refusing to drop {url.database!r}: its name does not contain {marker!r}")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def empty_everything(engine, redis_client) -> None:
    """Empty every table (but Alembic's) and the Redis db: nothing left queued by an earlier
    test runs into the next one."""
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    redis_client.flushdb()
