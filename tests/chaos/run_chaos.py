#!/usr/bin/env python3
"""`make chaos`: the whole system under load while its processes crash; prints figures.

Starts a private Postgres and Redis, every service as real processes, a webhook receiver and
a websocket client; submits `--tasks` tasks through the HTTP API while a seeded fault
injector kill -9s every kind of process, wipes Redis and restarts Postgres; waits for
quiescence; then checks from Postgres (plus a chaos-only audit trigger) and from what the
receivers saw that nothing was lost, finished twice, run after revoke or started early, and
that every webhook and websocket event arrived. Exits 1 when any of those figures is not 0.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: `support` and `chaos` packages

from sqlalchemy import create_engine, text  # noqa: E402
from support.stack import REPO  # noqa: E402

from chaos import audit, checks, cluster, recurring, report  # noqa: E402
from chaos.faults import FaultInjector  # noqa: E402
from chaos.observers import WebhookReceiver, WsClient  # noqa: E402
from chaos.servers import Servers  # noqa: E402
from chaos.workload import ApiUser, Workload, plan  # noqa: E402
from shared.db import sqlalchemy_url  # noqa: E402

PROGRESS_SECONDS = 15.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="run_chaos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=10_000, help="tasks to submit (default 10000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the task mix and of the fault schedule")
    p.add_argument("--clients", type=int, default=8, help="concurrent API clients submitting")
    p.add_argument("--workers", type=int, default=2, help="worker processes (each serves every queue)")
    p.add_argument("--threads", type=int, default=16, help="threads per worker process")
    p.add_argument("--fault-interval", type=float, default=5.0, help="mean seconds between two faults")
    p.add_argument("--redis-wipes", type=int, default=2, help="Redis restarts with data loss")
    p.add_argument("--quiesce-timeout", type=float, default=1200.0, help="seconds to wait for every task to settle")
    p.add_argument("--stuck-after", type=float, default=120.0,
                   help="a task queued longer than this (seconds) before moving on counts as stuck")
    p.add_argument("--log-dir", type=Path, help="service logs (default /tmp/taskqueue-chaos-<time>)")
    return p.parse_args(argv)


def migrate(database_url: str, log_dir: Path) -> None:
    with open(log_dir / "migrate.log", "wb") as log:
        subprocess.run([sys.executable, "-m", "shared.migrate"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                       env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}, check=True)


def wait_quiet(engine, accepted, receiver, ws, timeout: float) -> bool:
    """Until every accepted task is terminal, no delivery is pending and both observers have
    everything they should; True when that happened before `timeout`."""
    deadline, next_print = time.monotonic() + timeout, 0.0
    while True:
        ids = list(accepted) + recurring.task_ids(engine)
        status = checks.final_statuses(engine, ids)
        open_tasks = sum(1 for t in ids if status.get(t) not in checks.TERMINAL)
        pending = checks.pending_deliveries(engine)
        hooked = {t for t, s in accepted.items() if s.body.get("callback_url") and status.get(t) in checks.TERMINAL}
        with receiver.lock:
            got = {d.task_id for d in receiver.accepted}
        hooks_missing = len(hooked - got)
        ws_missing = len(set(checks.terminal_events(engine, ids)) - ws.seen())
        if not (open_tasks or pending or hooks_missing or ws_missing):
            return True
        if time.monotonic() >= next_print:
            print(f"  [{time.strftime('%H:%M:%S')}] settling: {open_tasks} tasks not terminal, {pending} deliveries "
                  f"pending, {hooks_missing} webhooks and {ws_missing} websocket events not seen yet", flush=True)
            next_print = time.monotonic() + PROGRESS_SECONDS
        if time.monotonic() > deadline:
            return False
        time.sleep(2)


def throughput(engine, start: float, end: float) -> float:
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM chaos_audit WHERE new_status IN ('success', 'failure', 'revoked') "
                              "AND at BETWEEN to_timestamp(:a) AND to_timestamp(:b)"), {"a": start, "b": end}).scalar()
    return n / max(end - start, 1e-9)


def on_signal(*_):
    """SIGTERM and SIGINT both stop the run through the same cleanup (explicitly installed:
    a Python started in the background inherits SIGINT ignored)."""
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log_dir = args.log_dir or Path(f"/tmp/taskqueue-chaos-{time.strftime('%Y%m%d-%H%M%S')}")
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"chaos: {args.tasks} tasks, seed {args.seed}; service logs in {log_dir}", flush=True)
    t0 = time.monotonic()
    servers = receiver = stack = ws = engine = injector = None
    try:
        servers = Servers().start()
        migrate(servers.postgres.url, log_dir)
        engine = create_engine(sqlalchemy_url(servers.postgres.url), pool_pre_ping=True, pool_size=4)
        audit.install(engine, servers.postgres.url)
        receiver = WebhookReceiver()
        stack = cluster.start(log_dir, servers, args.workers, args.threads)
        print(f"  system up in {time.monotonic() - t0:.1f}s: " + ", ".join(s.name for s in stack.services), flush=True)
        user = ApiUser(stack.of_kind("gateway")[0].url)
        ws = WsClient(stack.of_kind("notifier")[0].url, user.token).start()
        injector = FaultInjector(stack, servers, ws, args.seed, args.fault_interval, args.redis_wipes)
        return run(args, servers, stack, engine, receiver, ws, user, injector, log_dir, t0)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave servers behind
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if injector is not None:
            injector.stop.set()  # no restart after this point; a start in progress is stopped below
        for closer in (ws and ws.stop, stack and stack.shutdown, injector and (lambda: injector.join(150)),
                       stack and stack.shutdown, receiver and receiver.close,
                       engine and engine.dispose, servers and servers.stop):
            try:
                closer and closer()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                print(f"cleanup: {exc}", flush=True)


def run(args, servers, stack, engine, receiver, ws, user, injector, log_dir, t0) -> int:
    specs = plan(args.tasks, args.seed, receiver.url)
    workload = Workload(user, specs, args.clients)
    schedule_ids = recurring.create(user)
    chaos_start = time.time()
    workload.start()
    injector.start(until=workload.submitted)
    workload.wait_submitted()
    submit_s = time.time() - chaos_start
    print(f"  submitted {len(workload.out.accepted)} tasks in {submit_s:.1f}s; waiting for the planned faults", flush=True)
    injector.join()
    chaos_end = time.time()
    recurring.pause(user, schedule_ids)
    workload.join()
    settle_start = time.time()
    quiet = wait_quiet(engine, workload.out.accepted, receiver, ws, args.quiesce_timeout)
    settle_s = time.time() - settle_start
    if not quiet:
        print(f"  NOT quiescent after {args.quiesce_timeout:g}s: reporting what is there", flush=True)
    figures = checks.run_all(engine, workload.out.accepted, len(workload.out.not_accepted), user.user_id,
                             receiver, ws, workload.out.cancels, args.stuck_after)
    figures.submit_retries, figures.replayed = user.retries, workload.out.replayed
    durations = {"submission": submit_s, "chaos (faults)": chaos_end - chaos_start,
                 "settling after chaos": settle_s, "whole run": time.monotonic() - t0}
    report.print_report(figures, dict(injector.counts), durations, throughput(engine, chaos_start, chaos_end),
                        str(log_dir), injector.errors)
    return 1 if any(figures.failures().values()) or not quiet else 0


if __name__ == "__main__":
    sys.exit(main())
