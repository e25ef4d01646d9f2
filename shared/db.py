"""Database engine construction: one pooled engine per process, never a connect per request."""
from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine


def sqlalchemy_url(database_url: str) -> str:
    """Accept plain `postgresql://` URLs (what ops set) and pin the psycopg2 driver."""
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://"):]
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg2://" + database_url[len("postgresql://"):]
    return database_url


def engine_options(pool_size: int) -> dict:
    return {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        # No pre-ping: it costs a round trip per checkout. A connection found dead is
        # invalidated with the rest of the pool, and the next checkout reconnects.
        "pool_pre_ping": False,
        "pool_recycle": 1800,
        # Errors are logged: never with the statement's bound values (callback secrets,
        # password hashes, payloads).
        "hide_parameters": True,
    }


def make_engine(
    database_url: str, pool_size: int = 5, application_name: str = "taskqueue", autocommit: bool = False
) -> Engine:
    """A pooled engine. `autocommit=True` suits single-statement writes (every transition is
    one statement, atomic on its own): no BEGIN/COMMIT round trips."""
    return create_engine(
        sqlalchemy_url(database_url),
        connect_args={"application_name": application_name},
        isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
        # An autocommit connection holds no transaction to roll back when it returns to the
        # pool; skipping the call spares a GIL release per checkout on the hot paths.
        **{**engine_options(pool_size), **({"pool_reset_on_return": None} if autocommit else {})},
    )

