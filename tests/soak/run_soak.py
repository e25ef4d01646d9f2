#!/usr/bin/env python3
"""Soak: the whole system at half its measured end-to-end capacity for --duration seconds.

Starts every service as a real process (gateway as python -m gateway, worker(s), scheduler(s),
dispatcher, notifier) on its own database `taskqueue_soak` and Redis db 12, with a webhook
receiver and a websocket client attached; measures capacity with a short burst (unless --rate
is given), then submits a mix of tasks through the HTTP API at half of it, printing a sample
every --interval seconds. At the end it prints the RSS growth of every process after the
warm-up (the first 20% of the run, at least 2 minutes) and whether tables and streams stayed
bounded, and exits 1 on any violation (see report.py for the rules). Services are stopped
at the end and on Ctrl-C; their logs stay in the printed directory.

    .venv/bin/python tests/soak/run_soak.py --duration 600
    make soak DURATION=1800 ARGS='--rate 20 --workers 2'
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: `soak` and `support`

import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from support.stack import Stack  # noqa: E402

from shared.db import sqlalchemy_url  # noqa: E402
from soak import environment, report, sampler  # noqa: E402
from soak.load import Load  # noqa: E402
from soak.receiver import Receiver  # noqa: E402
from soak.watcher import Watcher  # noqa: E402
from soak.workload import Api  # noqa: E402

HEADER_EVERY = 30


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="run_soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=1800, help="seconds of steady load (default 1800)")
    p.add_argument("--interval", type=float, default=10, help="seconds between samples (default 10)")
    p.add_argument("--rate", type=float, help="tasks/s to submit (default: half the measured capacity)")
    p.add_argument("--burst", type=float, default=20, help="seconds of the capacity burst (default 20)")
    p.add_argument("--warmup", type=float, help="seconds excluded from the verdict (default max(20%%, 120))")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--worker-threads", type=int, default=8)
    p.add_argument("--schedulers", type=int, default=1, help="scheduler replicas (default 1)")
    p.add_argument("--gateway-workers", type=int, default=2)
    p.add_argument("--retention", type=float, default=120, help="seconds finished tasks are kept (default 120)")
    p.add_argument("--retention-interval", type=float, default=30, help="seconds between retention runs (default 30)")
    p.add_argument("--stream-maxlen", type=int, default=1000,
                   help="EVENTS_STREAM_MAXLEN (default 1000: reached within the warm-up even at a few tasks/s)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--database", default=environment.DATABASE, help="re-created on DATABASE_URL's server (name must "
                   f"contain 'soak'; default {environment.DATABASE})")
    p.add_argument("--redis-db", type=int, default=environment.REDIS_DB,
                   help=f"Redis db number on REDIS_URL's server, emptied first (default {environment.REDIS_DB})")
    p.add_argument("--log-dir", type=Path, help="service logs (default: a new temporary directory)")
    return p.parse_args(argv)


def start_system(args, log_dir: Path, env: dict) -> Stack:
    stack = Stack(log_dir, env=env)
    stack.add_gateway(workers=args.gateway_workers, threads=4)
    for _ in range(args.workers):
        stack.add_worker(threads=args.worker_threads)
    for _ in range(args.schedulers):
        stack.add_scheduler(LOG_LEVEL="INFO")  # its one "retention run" line per run
    stack.add_dispatcher()
    stack.add_notifier()
    stack.wait_healthy(timeout=120)
    return stack


def retention_summary(stack: Stack) -> str:
    """How many retention runs the schedulers logged, and what the last one deleted."""
    runs = [json.loads(line) for s in stack.of_kind("scheduler")
            for line in s.log_path.read_text(errors="replace").splitlines() if '"retention run"' in line]
    return f"retention runs logged: {len(runs)}; last: {runs[-1].get('deleted') if runs else '-'}"


def soak(args, stack: Stack, engine, client: redis.Redis, load: Load) -> list[sampler.Sample]:
    """The steady phase: samples every --interval seconds while the pacer submits."""
    labels = list(sampler.processes(stack))
    table, samples = report.Table(labels), []
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if len(samples) % HEADER_EVERY == 0:
            print(table.header(), flush=True)
        sample = sampler.take(stack, engine, client, environment.STREAM, elapsed, load.counts.submitted)
        samples.append(sample)
        print(table.line(sample), flush=True)
        if elapsed >= args.duration:
            return samples
        time.sleep(max(0.0, started + len(samples) * args.interval - time.monotonic()))


def warn_without_autovacuum(engine) -> None:
    """Deleted rows leave dead tuples that only (auto)vacuum makes reusable: without it the
    database's on-disk size grows however bounded the row counts are. Say so up front."""
    with engine.connect() as conn:
        if conn.execute(text("SHOW autovacuum")).scalar() != "on":
            print("note: autovacuum is off on this Postgres server: the on-disk size will grow with dead tuples "
                  "(row counts are what the verdict checks)", flush=True)


def run(args) -> int:
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="taskqueue-soak-"))
    db_url, r_url = environment.database_url(args.database), environment.redis_url(args.redis_db)
    print(f"soak: database {args.database}, redis db {args.redis_db}, logs in {log_dir}", flush=True)
    environment.recreate_database(db_url)
    environment.empty_redis(r_url)
    env = environment.service_env(db_url, r_url, retention_seconds=args.retention,
                                  retention_interval=args.retention_interval, stream_maxlen=args.stream_maxlen,
                                  token_minutes=int((args.duration + 3600) / 60))
    engine = create_engine(sqlalchemy_url(db_url), pool_size=2)
    warn_without_autovacuum(engine)
    client = redis.Redis.from_url(r_url)
    receiver = Receiver(seed=args.seed)
    stack = watcher = load = None
    try:
        stack = start_system(args, log_dir, env)
        print("services up: " + ", ".join(f"{name} {pids}" for name, pids in stack.pids().items()), flush=True)
        api = Api(stack.of_kind("gateway")[0].url)
        api.register()
        load = Load(api, receiver.url, args.seed)
        watcher = Watcher(stack.of_kind("notifier")[0].url, api.access)
        if args.rate:
            rate = args.rate
            print(f"rate given: {rate:.1f} tasks/s", flush=True)
        else:
            capacity = load.measure_capacity(engine, args.burst)
            rate = capacity / 2
            print(f"capacity (e2e, {args.burst:.0f}s burst of {load.counts.accepted} tasks): {capacity:.1f} tasks/s "
                  f"-> soak rate {rate:.1f} tasks/s", flush=True)
        load.start(rate)
        samples = soak(args, stack, engine, client, load)
        load.stop()
        warmup = args.warmup if args.warmup is not None else max(0.2 * args.duration, 120)
        lines, violations = report.verdict(samples, warmup)
        c = load.counts
        print("\n".join(lines))
        print(f"tasks submitted {c.submitted}, accepted {c.accepted}, refused {c.refused}; "
              f"webhooks received {dict(receiver.counts)}; websocket messages {watcher.messages} "
              f"(reconnects {watcher.reconnects})")
        print(retention_summary(stack))
        print("VIOLATIONS:\n  " + "\n  ".join(violations) if violations else "no violation", flush=True)
        return 1 if violations else 0
    finally:
        if load is not None:
            load.stop()
        if watcher is not None:
            watcher.close()
        if stack is not None:
            stack.shutdown()
        receiver.close()
        engine.dispose()


def interrupt(*_) -> None:
    """SIGTERM stops the soak like Ctrl-C: services are stopped on the way out."""
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: services stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
