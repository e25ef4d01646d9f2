"""`python -m notifier`: serve live task updates over websockets until SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import logging
import resource

from shared import logs, ops_server
from shared.db import make_engine
from shared.settings import Settings

from .server import Notifier

log = logging.getLogger("notifier")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="notifier", description=__doc__)
    parser.add_argument("--host", help="websocket listen address (default NOTIFIER_HOST)")
    parser.add_argument("--port", type=int, help="websocket port (default NOTIFIER_PORT)")
    parser.add_argument("--metrics-port", type=int, help="health/metrics port (default NOTIFIER_METRICS_PORT)")
    return parser.parse_args(argv)


def raise_open_files_limit() -> int:
    """One descriptor per client: lift the soft limit (often 1024) to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def main(argv=None) -> None:
    args = parse_args(argv)
    settings = Settings.from_env()
    logs.configure("notifier", settings.log_level)
    # websockets logs every handshake at INFO: with thousands of clients that is most of the log.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLogger().level))

    log.info("open files limit", extra={"limit": raise_open_files_limit()})
    # Only single-task handshakes touch Postgres (one short read each, from worker threads).
    engine = make_engine(settings.database_url, pool_size=4, application_name="notifier")
    notifier = Notifier(settings, engine)
    ops = ops_server.serve(args.metrics_port or settings.notifier_metrics_port, notifier.health)
    try:
        asyncio.run(notifier.run(args.host or settings.notifier_host, args.port or settings.notifier_port))
    finally:
        ops.shutdown()
        engine.dispose()


if __name__ == "__main__":
    main()
