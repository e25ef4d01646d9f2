"""`python -m shared.migrate`: bring the database schema to the latest Alembic revision.

Creates the database first when it does not exist (local development convenience).
Several processes may run this at once; an advisory lock inside the migration env serialises them.
"""
from __future__ import annotations

import logging
import os
import sys

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from .db import sqlalchemy_url
from .settings import Settings

log = logging.getLogger("shared.migrate")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return cfg


def ensure_database(database_url: str) -> None:
    """Create the database when it is missing (local development). When it exists, nothing else
    is touched: managed Postgres often forbids the app user the `postgres` admin database."""
    url = make_url(sqlalchemy_url(database_url))
    probe = create_engine(url)
    try:
        with probe.connect():
            return
    except OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    finally:
        probe.dispose()
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
                log.info("created database %s", url.database)
    finally:
        admin.dispose()


def upgrade(database_url: str) -> None:
    ensure_database(database_url)
    command.upgrade(alembic_config(database_url), "head")


def main() -> int:
    logging.basicConfig(level="INFO", format="%(message)s")
    upgrade(Settings.from_env().database_url)
    print("migrations applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
