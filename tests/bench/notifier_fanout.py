"""Benchmark: websocket fan-out of one notifier process.

Opens N concurrent connections to the list feed (`/ws/tasks/`) of one user, then publishes
synthetic events for that user straight onto the event stream (XADD, the fields of
`shared.events.encode`) at a steady rate for a while, and prints as JSON: connections held
to the end, messages expected/received, and event->client latency (the event's `timestamp`,
set just before its XADD, to the moment a client has read and parsed it) p50/p90/p99/max.
Clients run in `--procs` processes (each its own event loop) so the client side is not
the bottleneck of what is measured.

The watching user is registered through the gateway (`--api`), since the notifier checks
that a token's session is live; or pass --token and --owner-id of an existing user.

    python tests/bench/notifier_fanout.py --api http://127.0.0.1:8000/api/v1 --ws ws://127.0.0.1:8001 \
        --redis redis://127.0.0.1:6379/0 --connections 1000 --rate 20 --duration 10 --procs 2
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import statistics
import time
import uuid
from datetime import datetime, timezone

import redis
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

STREAM = "taskqueue:events"
BENCH_EVENT_IDS = 900_000_000_000  # far above real event ids, so nothing else dedups them away


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def register_user(api: str) -> tuple[int, str]:
    """A fresh user's id and access token, from the gateway."""
    name = f"fanout_{uuid.uuid4().hex[:10]}"
    body = {"username": name, "email": f"{name}@example.com", "password": "fanout-password-1",
            "password_confirm": "fanout-password-1"}
    response = requests.post(f"{api}/auth/register/", json=body, timeout=30)
    response.raise_for_status()
    data = response.json()
    return data["user"]["id"], data["tokens"]["access"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


# --------------------------------------------------------------------------- clients (child processes)


class Probe:
    """What the clients of one process saw. Parsing is kept minimal (the timestamp only, each
    distinct one parsed once) so the clients cost as little CPU as possible next to the server."""

    def __init__(self) -> None:
        self.ready = 0
        self.latencies: list[float] = []
        self.outcome: dict[str, int] = {}
        self._epochs: dict[bytes, float] = {}

    def record(self, raw: bytes) -> None:
        received = time.time()
        start = raw.rfind(b'"timestamp": "') + 14
        stamp = raw[start:raw.index(b'"', start)]
        epoch = self._epochs.get(stamp)
        if epoch is None:
            epoch = self._epochs[stamp] = datetime.fromisoformat(stamp.decode()).timestamp()
        self.latencies.append(received - epoch)

    def count(self, what: str) -> None:
        self.outcome[what] = self.outcome.get(what, 0) + 1


async def one_client(url: str, probe: Probe, open_now: set) -> None:
    """Read until cancelled at the end of the run (or until the server closes the connection)."""
    try:
        async with connect(url, open_timeout=30, compression=None, ping_interval=None, max_queue=64) as ws:
            probe.ready += 1
            open_now.add(ws)
            try:
                while True:
                    probe.record(await ws.recv(decode=False))
            finally:
                open_now.discard(ws)
    except ConnectionClosed as exc:
        probe.count(f"closed_{exc.rcvd.code if exc.rcvd else None}")
    except Exception as exc:  # noqa: BLE001 - a benchmark reports failures, it does not crash on them
        probe.count(type(exc).__name__)


async def client_group(url: str, count: int, barrier, deadline_conn, results) -> None:
    raise_open_files_limit()
    probe, still_open = Probe(), set()
    tasks = []
    for i in range(count):  # connect in waves, like clients coming online
        tasks.append(asyncio.create_task(one_client(url, probe, still_open)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    while probe.ready + sum(probe.outcome.values()) < count:
        await asyncio.sleep(0.05)
    await asyncio.to_thread(barrier.wait)  # every process connected: the parent starts publishing
    stop_at = await asyncio.to_thread(deadline_conn.recv)
    await asyncio.sleep(max(0.0, stop_at - time.time()))
    held = len(still_open)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put({"connected": probe.ready, "held": held, "latencies": probe.latencies, "outcome": probe.outcome})


def run_clients(url: str, count: int, barrier, deadline_conn, results) -> None:
    asyncio.run(client_group(url, count, barrier, deadline_conn, results))


# --------------------------------------------------------------------------- publisher (parent)


def publish(client: redis.Redis, owner_id: int, rate: float, duration: float) -> int:
    """XADD `rate` events per second for `duration` seconds, on a fixed schedule (no drift)."""
    task_id, interval, sent = uuid.uuid4(), 1.0 / rate, 0
    start = time.monotonic()
    while (due := start + sent * interval) < start + duration:
        time.sleep(max(0.0, due - time.monotonic()))
        now = datetime.now(timezone.utc)
        client.xadd(STREAM, {
            "event_id": str(BENCH_EVENT_IDS + sent), "task_id": str(task_id), "owner_id": str(owner_id),
            "status": "running", "result": json.dumps(None), "error_message": "", "timestamp": now.isoformat(),
            "webhook_event": "",
        }, maxlen=100_000, approximate=True)
        sent += 1
    return sent


def scrape(metrics_url: str | None) -> dict:
    """The notifier's own figures: connections, slow clients closed, fan-out lag histogram buckets."""
    if not metrics_url:
        return {}
    out: dict = {"lag_buckets": {}}
    for line in requests.get(metrics_url, timeout=5).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in ("taskqueue_notifier_connections", "taskqueue_notifier_slow_clients_closed_total"):
            out[name] = float(value)
        elif name.startswith("taskqueue_notifier_fanout_lag_seconds_bucket"):
            out["lag_buckets"][name.split('le="')[1].split('"')[0]] = float(value)
    return out


def server_lag(before: dict, after: dict) -> dict:
    """Upper bound of the histogram bucket holding p50/p99 of this run's notifier-side lag (ms)."""
    buckets = after.get("lag_buckets", {})
    if not buckets:
        return {}
    delta = sorted(((float(le), n - before.get("lag_buckets", {}).get(le, 0.0)) for le, n in buckets.items()))
    total = delta[-1][1]

    def bound(p: float):
        return next((le * 1000 for le, n in delta if n >= p / 100 * total), None) if total else None

    return {"observed": int(total), "p50_le_ms": bound(50), "p99_le_ms": bound(99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ws", default="ws://127.0.0.1:8001")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--metrics", default="http://127.0.0.1:9102/metrics", help="notifier /metrics ('' to skip)")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20, help="events per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds of publishing")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--api", default="http://127.0.0.1:8000/api/v1", help="gateway, to register the watching user")
    parser.add_argument("--owner-id", type=int, help="user whose list feed is watched (with --token)")
    parser.add_argument("--token", help="access token of --owner-id (default: a user registered through --api)")
    args = parser.parse_args()
    raise_open_files_limit()

    if args.token is None or args.owner_id is None:
        args.owner_id, args.token = register_user(args.api)
    url = f"{args.ws}/ws/tasks/?token={args.token}"
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(args.procs + 1), ctx.Queue()
    shares = [args.connections // args.procs + (1 if i < args.connections % args.procs else 0) for i in range(args.procs)]
    pipes, procs = [], []
    for share in shares:
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=run_clients, args=(url, share, barrier, child_end, results))
        proc.start()
        pipes.append(parent_end)
        procs.append(proc)

    connect_started = time.monotonic()
    barrier.wait(timeout=120)
    connect_seconds = time.monotonic() - connect_started
    metrics_before = scrape(args.metrics)
    # Clients stop reading 3 s after the last event: time for the last deliveries to arrive.
    for pipe in pipes:
        pipe.send(time.time() + args.duration + 3)
    sent = publish(redis.Redis.from_url(args.redis), args.owner_id, args.rate, args.duration)
    parts = [results.get(timeout=120) for _ in procs]
    metrics_after = scrape(args.metrics)
    for proc in procs:
        proc.join(30)

    latencies = [v for part in parts for v in part["latencies"]]
    outcome: dict = {"held": sum(part["held"] for part in parts)}
    for part in parts:
        for key, value in part["outcome"].items():
            outcome[key] = outcome.get(key, 0) + value
    connected = sum(part["connected"] for part in parts)
    print(json.dumps({
        "connections_requested": args.connections,
        "connections_opened": connected,
        "connect_seconds": round(connect_seconds, 2),
        "connections_held_to_end": outcome.get("held", 0),
        "client_outcomes": outcome,
        "events_published": sent,
        "event_rate_per_s": args.rate,
        "duration_s": args.duration,
        "messages_expected": sent * connected,
        "messages_received": len(latencies),
        "deliveries_per_s": round(len(latencies) / args.duration, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 2),
            "p90": round(percentile(latencies, 90) * 1000, 2),
            "p99": round(percentile(latencies, 99) * 1000, 2),
            "max": round(max(latencies) * 1000, 2) if latencies else None,
            "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        },
        "notifier_side_lag": server_lag(metrics_before, metrics_after),
        "notifier_connections_during": metrics_before.get("taskqueue_notifier_connections"),
        "notifier_slow_clients_closed": (metrics_after.get("taskqueue_notifier_slow_clients_closed_total", 0)
                                         - metrics_before.get("taskqueue_notifier_slow_clients_closed_total", 0)),
        "client_procs": args.procs,
    }, indent=2))


if __name__ == "__main__":
    main()
