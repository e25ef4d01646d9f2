"""The soak's own database and Redis db, and the environment its services run with.

The soak never touches the development or test data: it recreates the database `taskqueue_soak`
(on the server of DATABASE_URL), migrates it with `python -m shared.migrate` as a deployment
would, and empties Redis db 12 (FLUSHDB on that db only). Retention is short, so that bounded
tables reach their plateau within the warm-up and can be seen to stay there.
"""
from __future__ import annotations

import os
import subprocess
import sys

import redis
from sqlalchemy.engine import make_url
from support.databases import drop_database

DATABASE = "taskqueue_soak"
REDIS_DB = 12
STREAM = "taskqueue:events"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/taskqueue"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def database_url(database: str = DATABASE) -> str:
    """DATABASE_URL's server (or the local default) with the soak's database."""
    url = make_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    return url.set(database=database).render_as_string(hide_password=False)


def redis_url(db: int = REDIS_DB) -> str:
    """REDIS_URL's server (or the local default) with the soak's db number."""
    base = (os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL).rsplit("/", 1)[0]
    return f"{base}/{db}"


def recreate_database(url: str) -> None:
    """Drop and re-create the soak database, then migrate it like a deployment does."""
    drop_database(url, "soak")
    done = subprocess.run([sys.executable, "-m", "shared.migrate"], env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"migrating {make_url(url).database} failed:\n{done.stdout}{done.stderr}")


def empty_redis(url: str) -> None:
    redis.Redis.from_url(url).flushdb()


def service_env(db_url: str, r_url: str, *, retention_seconds: float, retention_interval: float,
                stream_maxlen: int, token_minutes: int) -> dict[str, str]:
    """What every service of the soak runs with (merged over this process's environment)."""
    days = retention_seconds / 86_400
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": r_url,
        "EVENTS_STREAM": STREAM,
        "RATELIMIT_STORAGE_URL": r_url,
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver listens on 127.0.0.1
        "WEBHOOK_RETRY_BASE_SECONDS": "1",  # the receiver refuses some sends: retries come back soon
        "RETENTION_TASKS_DAYS": repr(days),
        "RETENTION_DELIVERIES_DAYS": repr(days),
        "RETENTION_DEAD_LETTERS_DAYS": repr(days),
        "RETENTION_INTERVAL_SECONDS": str(retention_interval),
        "EVENTS_STREAM_MAXLEN": str(stream_maxlen),
        "JWT_ACCESS_TOKEN_MINUTES": str(token_minutes),  # one login lasts the whole run
        "LOG_LEVEL": "WARNING",
    }
