"""Benchmark: how late does the scheduler release delayed tasks with 10,000 waiting?

Submits N echo tasks through the HTTP API, all scheduled in a window that opens after every
task is submitted (so N tasks wait at once), waits until they all succeed, then prints the
release lateness (the scheduler's own histogram on /metrics, released_at - scheduled_at) and
the start lateness (started_at - scheduled_at, from the API) as JSON.

    python tests/bench/scheduler_lateness.py --api http://127.0.0.1:8000/api/v1 \
        --scheduler-metrics http://127.0.0.1:9101/metrics --count 10000 --window 20
"""
from __future__ import annotations

import argparse
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import requests


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def lateness_histogram(metrics_url: str) -> dict[str, float]:
    """Cumulative bucket counts of taskqueue_scheduler_release_lateness_seconds."""
    buckets = {}
    for line in requests.get(metrics_url, timeout=5).text.splitlines():
        if line.startswith("taskqueue_scheduler_release_lateness_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    return buckets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default="http://127.0.0.1:8000/api/v1")
    parser.add_argument("--scheduler-metrics", default="http://127.0.0.1:9101/metrics")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--window", type=float, default=20.0, help="seconds over which the tasks fall due")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    session = requests.Session()
    user = f"lateness_{uuid.uuid4().hex[:8]}"
    password = "Bench-pass-123"
    session.post(f"{args.api}/auth/register/", json={"username": user, "email": f"{user}@example.com",
                                                    "password": password, "password_confirm": password}).raise_for_status()
    token = session.post(f"{args.api}/auth/token/", json={"username": user, "password": password}).json()["access"]
    headers = {"Authorization": f"Bearer {token}"}

    submit_estimate = args.count / 150 + 10  # generous: every task must be waiting before the first is due
    opens = datetime.now(timezone.utc) + timedelta(seconds=submit_estimate)
    before = lateness_histogram(args.scheduler_metrics)

    def submit(i: int) -> str:
        due = opens + timedelta(seconds=args.window * i / args.count)
        body = {"name": f"late-{i}", "task_type": "echo", "payload": {"i": i}, "scheduled_at": due.isoformat()}
        response = requests.post(f"{args.api}/tasks/", json=body, headers=headers, timeout=30)
        response.raise_for_status()
        return response.json()["status"]

    started = time.time()
    with ThreadPoolExecutor(args.clients) as pool:
        statuses = list(pool.map(submit, range(args.count)))
    submitted_s = time.time() - started
    waiting_at_open = statuses.count("scheduled")
    if datetime.now(timezone.utc) > opens:
        print(json.dumps({"error": "submission overran the window start; raise the estimate", "submitted_s": submitted_s}))
        return

    deadline = time.time() + submit_estimate + args.window + 120
    while time.time() < deadline:
        stats = session.get(f"{args.api}/tasks/stats/", headers=headers).json()
        if stats["success"] == args.count:
            break
        time.sleep(1)

    start_late = []
    page = 1
    while True:
        data = session.get(f"{args.api}/tasks/", params={"page": page, "page_size": 100}, headers=headers).json()
        for t in data["results"]:
            if t["started_at"]:
                start_late.append((datetime.fromisoformat(t["started_at"]) - datetime.fromisoformat(t["scheduled_at"])).total_seconds())
        if not data["next"]:
            break
        page += 1
    after = lateness_histogram(args.scheduler_metrics)
    released = {le: after[le] - before.get(le, 0) for le in after}
    total = released.get("+Inf", 0) or 1
    print(json.dumps({
        "count": args.count,
        "waiting_when_window_opened": waiting_at_open,
        "submit_s": round(submitted_s, 1),
        "succeeded": stats["success"],
        "release_lateness_share_within_s": {le: round(v / total, 4) for le, v in released.items()},
        "start_lateness_ms": {
            "p50": round(percentile(start_late, 50) * 1000, 1),
            "p99": round(percentile(start_late, 99) * 1000, 1),
            "max": round(max(start_late) * 1000, 1),
            "early": sum(1 for x in start_late if x < 0),
        },
    }))


if __name__ == "__main__":
    main()
