"""`python -m gateway`: serve the Flask app (`gateway.app:create_app`) under Granian.

Granian parses HTTP and keeps connections in Rust, off the GIL; Python only runs the app, on a
pool of threads per process. On 2 cores under `make run` (submit, 32 clients) it served ~10-15%
more requests than gunicorn's gthread workers for ~15% less gateway CPU per request.

Sized by GATEWAY_WORKERS processes x GATEWAY_THREADS threads, bound to GATEWAY_BIND (see
`shared.settings`). SIGTERM stops accepting, lets in-flight requests finish for up to
GRACEFUL_TIMEOUT_S, then exits.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.server import Server

from shared.settings import Settings

GRACEFUL_TIMEOUT_S = 30  # Kubernetes' terminationGracePeriodSeconds and compose allow for it
BACKLOG = 2048
# Bounds the request line plus headers (granian's default is 400 KB); bodies stream past it and
# the app refuses those over MAX_BODY_BYTES with 413.
HTTP1_BUFFER_BYTES = 64 * 1024
# Granian's own lines (start, stop, worker exits) as the same one-line JSON as every other log.
LOG_CONFIG = {
    "formatters": {"generic": {"()": "shared.logs.JsonFormatter", "service": "gateway"}},
    "handlers": {"console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
    "loggers": {"_granian": {"handlers": ["console"], "propagate": False}},
}


def split_bind(bind: str) -> tuple[str, int]:
    """"0.0.0.0:8000" or "[::]:8000" -> (host, port)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def build_server(settings: Settings) -> Server:
    host, port = split_bind(settings.gateway_bind)
    return Server(
        "gateway.app:create_app",
        factory=True,
        interface=Interfaces.WSGI,
        address=host,
        port=port,
        workers=settings.gateway_workers,
        blocking_threads=settings.gateway_threads,
        blocking_threads_idle_timeout=600,  # the longest: threads keep their connections (ratelimit)
        http=HTTPModes.http1,
        # keep-alive: a connection waits up to the 60 s maximum for its next request (proxies such as
        # ingress-nginx keep idle upstream connections 60 s)
        http1_settings=HTTP1Settings(max_buffer_size=HTTP1_BUFFER_BYTES, header_read_timeout=60_000),
        websockets=False,
        backlog=BACKLOG,
        respawn_failed_workers=True,  # a crashed worker process is replaced, as gunicorn would
        workers_kill_timeout=GRACEFUL_TIMEOUT_S,
        log_level=settings.log_level.lower(),
        log_dictconfig=LOG_CONFIG,
        log_access=False,  # the app logs requests itself as JSON when asked
    )


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several processes, a PROMETHEUS_MULTIPROC_DIR through which their metrics are
    aggregated (see gateway.metrics), set before they start and removed when they are done."""
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="taskqueue-gateway-metrics-") as path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        yield


def main() -> None:
    settings = Settings.from_env()
    with shared_metrics(settings.gateway_workers):
        build_server(settings).serve()


if __name__ == "__main__":
    main()
