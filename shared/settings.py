"""All configuration, read once from the environment, with working local defaults.

This is the one place an environment variable is named. Services receive a `Settings`
instance (dependency injection) instead of reading `os.environ` themselves.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, fields

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def derive_secret(secret: str, purpose: str) -> str:
    """A key for one purpose derived from another secret (HMAC-SHA256), so that one setting
    can key several things without any of them revealing or reusing the others' key."""
    return hmac.new(secret.encode(), f"taskqueue:{purpose}".encode(), hashlib.sha256).hexdigest()


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    redis_url: str
    jwt_secret_key: str
    admin_session_secret: str  # signs the admin dashboard's session cookie (and its CSRF tokens)
    admin_session_hours: float
    access_token_minutes: int
    refresh_token_days: int
    max_body_bytes: int
    default_page_size: int
    task_lease_seconds: int
    heartbeat_seconds: float
    worker_threads: int
    worker_idle_poll_ms: int
    lost_message_after_seconds: int
    release_interval_ms: int
    schedules_interval_ms: int
    schedule_misfire_grace_seconds: float
    events_stream: str
    events_maxlen: int
    webhook_allow_private_networks: bool
    log_level: str
    db_pool_size: int
    worker_metrics_port: int
    worker_shutdown_grace: float
    scheduler_metrics_port: int
    gateway_bind: str
    gateway_workers: int
    gateway_threads: int
    notifier_host: str
    notifier_port: int
    notifier_metrics_port: int
    notifier_client_buffer: int
    dispatcher_metrics_port: int
    dispatcher_concurrency: int
    webhook_connect_timeout: float
    webhook_read_timeout: float
    webhook_retry_base_seconds: float
    webhook_lease_seconds: float
    webhook_reconcile_seconds: float
    webhook_reconcile_hours: float
    dispatcher_claim_idle_seconds: float
    ratelimit_enabled: bool
    ratelimit_default: str
    ratelimit_auth: str
    ratelimit_trusted_proxies: int
    ratelimit_storage_url: str
    scheduler_gauges_seconds: float
    retention_interval_seconds: float
    vacuum_interval_seconds: float
    retention_batch_size: int
    retention_tasks_days: float
    retention_dead_letters_days: float
    retention_deliveries_days: float

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls) -> "Settings":
        env = _env("TASKQUEUE_ENV", "development")
        secret = os.environ.get("JWT_SECRET_KEY", "")
        if not secret:
            if env == "production":
                raise RuntimeError("JWT_SECRET_KEY must be set when TASKQUEUE_ENV=production")
            secret = DEV_JWT_SECRET
        return cls(
            env=env,
            database_url=_env("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/taskqueue"),
            redis_url=_env("REDIS_URL", "redis://127.0.0.1:6379/0"),
            jwt_secret_key=secret,
            # Unset: derived from JWT_SECRET_KEY (which production must set), so no dev default leaks.
            admin_session_secret=_env("ADMIN_SESSION_SECRET", "") or derive_secret(secret, "admin-session"),
            admin_session_hours=float(_env("ADMIN_SESSION_HOURS", "12")),
            access_token_minutes=int(_env("JWT_ACCESS_TOKEN_MINUTES", "30")),
            refresh_token_days=int(_env("JWT_REFRESH_TOKEN_DAYS", "7")),
            max_body_bytes=int(_env("MAX_BODY_BYTES", str(1024 * 1024))),
            default_page_size=int(_env("DEFAULT_PAGE_SIZE", "20")),
            task_lease_seconds=int(_env("TASK_LEASE_SECONDS", "30")),
            heartbeat_seconds=float(_env("WORKER_HEARTBEAT_SECONDS", "1")),
            worker_threads=int(_env("WORKER_THREADS", "16")),
            # Producers ring a doorbell that wakes idle consumers at once: this is only the
            # longest an idle consumer goes without looking at its queue (see shared.broker).
            worker_idle_poll_ms=int(_env("WORKER_IDLE_POLL_MS", "1000")),
            lost_message_after_seconds=int(_env("LOST_MESSAGE_AFTER_SECONDS", "10")),
            release_interval_ms=int(_env("SCHEDULER_RELEASE_INTERVAL_MS", "50")),
            # Recurring schedules: how often due ones are fired, and how late a fire of a
            # misfire_policy=skip schedule may be before it is skipped.
            schedules_interval_ms=int(_env("SCHEDULER_SCHEDULES_INTERVAL_MS", "500")),
            schedule_misfire_grace_seconds=float(_env("SCHEDULE_MISFIRE_GRACE_SECONDS", "60")),
            events_stream=_env("EVENTS_STREAM", "taskqueue:events"),
            events_maxlen=int(_env("EVENTS_STREAM_MAXLEN", "100000")),
            webhook_allow_private_networks=_bool(_env("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "false")),
            log_level=_env("LOG_LEVEL", "INFO"),
            db_pool_size=int(_env("DB_POOL_SIZE", "10")),
            worker_metrics_port=int(_env("WORKER_METRICS_PORT", "9191")),
            worker_shutdown_grace=float(_env("WORKER_SHUTDOWN_GRACE", "5")),
            scheduler_metrics_port=int(_env("SCHEDULER_METRICS_PORT", "9101")),
            gateway_bind=_env("GATEWAY_BIND", "0.0.0.0:8000"),
            # One process per two cores, many threads: a request mostly waits on Postgres and
            # Redis, and one process batches more per handoff round trip and keeps one set of
            # pools and caches (2 cores: 1x32 beat 2x8, 3x6 and 4x4 on requests/s and CPU each).
            gateway_workers=int(_env("GATEWAY_WORKERS", str(max(1, (os.cpu_count() or 2) // 2)))),
            gateway_threads=int(_env("GATEWAY_THREADS", "32")),
            notifier_host=_env("NOTIFIER_HOST", "0.0.0.0"),
            notifier_port=int(_env("NOTIFIER_PORT", "8001")),
            notifier_metrics_port=int(_env("NOTIFIER_METRICS_PORT", "9102")),
            notifier_client_buffer=int(_env("NOTIFIER_CLIENT_BUFFER", "256")),
            dispatcher_metrics_port=int(_env("DISPATCHER_METRICS_PORT", "9103")),
            dispatcher_concurrency=int(_env("DISPATCHER_CONCURRENCY", "16")),
            webhook_connect_timeout=float(_env("WEBHOOK_CONNECT_TIMEOUT", "5")),
            webhook_read_timeout=float(_env("WEBHOOK_READ_TIMEOUT", "15")),
            webhook_retry_base_seconds=float(_env("WEBHOOK_RETRY_BASE_SECONDS", "10")),
            # A dispatcher renews the lease of each send in flight; when it dies, its sends are
            # taken over once their lease has run out.
            webhook_lease_seconds=float(_env("WEBHOOK_LEASE_SECONDS", "30")),
            # Re-derive deliveries whose stream event Redis lost: how often, and how far back.
            webhook_reconcile_seconds=float(_env("WEBHOOK_RECONCILE_SECONDS", "30")),
            webhook_reconcile_hours=float(_env("WEBHOOK_RECONCILE_HOURS", "24")),
            # Stream entries a dead dispatcher read but never acknowledged are taken over after this.
            dispatcher_claim_idle_seconds=float(_env("DISPATCHER_CLAIM_IDLE_SECONDS", "60")),
            # Gateway rate limits (fixed windows, counters in Redis shared by every replica).
            # RATELIMIT_DEFAULT: per authenticated user (per client IP when anonymous), over all
            # endpoints; RATELIMIT_AUTH: per client IP on /auth/token/ and /auth/register/ each.
            ratelimit_enabled=_bool(_env("RATELIMIT_ENABLED", "true")),
            ratelimit_default=_env("RATELIMIT_DEFAULT", "100000/minute"),
            ratelimit_auth=_env("RATELIMIT_AUTH", "10/minute"),
            # Proxies in front of the gateway that append to X-Forwarded-For (0: never trust it).
            ratelimit_trusted_proxies=int(_env("RATELIMIT_TRUSTED_PROXIES", "0")),
            ratelimit_storage_url=_env("RATELIMIT_STORAGE_URL", ""),  # empty: REDIS_URL
            # How often the scheduler refreshes its queue-depth and tasks-per-status gauges.
            scheduler_gauges_seconds=float(_env("SCHEDULER_GAUGES_SECONDS", "15")),
            # Retention (the scheduler's apply_retention job): how often it runs (0: never), rows per
            # delete batch, and how many days (fractions allowed; 0 keeps forever) finished tasks,
            # dead letters and finished webhook deliveries are kept. See scheduler/retention.py.
            retention_interval_seconds=float(_env("RETENTION_INTERVAL_SECONDS", "60")),
            retention_batch_size=int(_env("RETENTION_BATCH_SIZE", "1000")),
            # How often the scheduler checks the queue's hot tables for dead rows to vacuum when
            # the Postgres server's autovacuum is off (0: never). See scheduler/vacuum.py.
            vacuum_interval_seconds=float(_env("VACUUM_INTERVAL_SECONDS", "30")),
            retention_tasks_days=float(_env("RETENTION_TASKS_DAYS", "30")),
            retention_dead_letters_days=float(_env("RETENTION_DEAD_LETTERS_DAYS", "0")),
            retention_deliveries_days=float(_env("RETENTION_DELIVERIES_DAYS", "30")),
        )

    def redacted(self) -> dict:
        """Settings safe to log: secrets and credentials removed."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["jwt_secret_key"] = "***"
        out["admin_session_secret"] = "***"
        return out
