"""The verdict: compare what Postgres (and its chaos audit) says with what the receivers saw.

All figures are computed over the tasks that got a 201 in this run.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from . import recurring
from .observers import WebhookReceiver, WsClient
from .workload import Spec

TERMINAL = ("success", "failure", "revoked")
WEBHOOK_EVENT = {"success": "task.succeeded", "failure": "task.failed", "revoked": "task.revoked"}


def _rows(engine: Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def final_statuses(engine: Engine, ids: list[str]) -> dict[str, str]:
    rows = _rows(engine, "SELECT id::text, status FROM tasks WHERE id = ANY(CAST(:ids AS uuid[]))", ids=ids)
    return dict(rows)


def terminal_events(engine: Engine, ids: list[str]) -> dict[int, tuple[str, str]]:
    """event id -> (task id, status) of every terminal status event the system emitted."""
    rows = _rows(engine, "SELECT event_id, task_id::text, status FROM chaos_events "
                         "WHERE webhook_event = '' AND status IN ('success', 'failure', 'revoked') "
                         "AND task_id = ANY(CAST(:ids AS uuid[]))", ids=ids)
    return {r[0]: (r[1], r[2]) for r in rows}


def pending_deliveries(engine: Engine) -> int:
    return _rows(engine, "SELECT count(*) FROM webhook_deliveries WHERE status NOT IN ('success', 'failure')")[0][0]


@dataclass
class Figures:
    accepted: int = 0
    not_accepted: int = 0
    extra_rows: int = 0  # tasks in Postgres for our user beyond the 201s (a doubled submission)
    terminal: int = 0
    lost: list[str] = field(default_factory=list)
    by_status: dict[str, int] = field(default_factory=dict)
    finished_twice: list[str] = field(default_factory=list)
    ran_after_revoke: list[str] = field(default_factory=list)
    started_early: list[str] = field(default_factory=list)
    delayed: int = 0
    attempts_total: int = 0
    recovered_runs: int = 0  # running -> queued (lease recovered or handed back)
    dead_letters: int = 0
    webhooks_expected: int = 0
    webhooks_delivered: int = 0
    webhooks_missing: list[str] = field(default_factory=list)
    webhook_dup_ids: list[str] = field(default_factory=list)
    webhook_redeliveries: int = 0
    webhooks_refused_first: int = 0
    deliveries_failed: int = 0
    delivery_rows_doubled: list[str] = field(default_factory=list)  # >1 automatic delivery row per task event
    ws_expected: int = 0
    ws_seen: int = 0
    ws_missing: list[int] = field(default_factory=list)
    ws_connects: int = 0
    ws_gaps: int = 0
    cancels: dict[str, int] = field(default_factory=dict)
    schedules: dict[str, int] = field(default_factory=dict)  # see recurring.figures
    longest_queued: float = 0.0  # seconds: the longest any task stayed `queued` before it moved on
    stuck_after: float = 120.0  # seconds in `queued` that count as stuck (--stuck-after)
    stuck: int = 0  # waits in `queued` longer than stuck_after: a message lost and not recovered
    submit_retries: int = 0
    replayed: int = 0

    def failures(self) -> dict[str, int]:
        """The figures that must all be 0."""
        return {"lost": len(self.lost), "finished twice": len(self.finished_twice),
                "ran after revoke": len(self.ran_after_revoke), "started early": len(self.started_early),
                "doubled submissions": self.extra_rows, "not accepted": self.not_accepted,
                "webhooks missing": len(self.webhooks_missing), "webhook duplicate ids": len(self.webhook_dup_ids),
                "delivery rows doubled": len(self.delivery_rows_doubled),
                "websocket events missing": len(self.ws_missing),
                "stuck in queued": self.stuck,
                "schedule fires doubled": self.schedules.get("doubled", 0),
                "schedule tasks not terminal": self.schedules.get("not_terminal", 0)}


def check_tasks(engine: Engine, accepted: dict[str, Spec], user_id: int, f: Figures) -> dict[str, str]:
    ids = list(accepted)
    status = final_statuses(engine, ids)
    f.accepted = len(ids)
    f.extra_rows = _rows(engine, "SELECT count(*) FROM tasks WHERE owner_id = :u AND name NOT LIKE :p",
                         u=user_id, p=recurring.PREFIX + "%")[0][0] - len(ids)
    f.terminal = sum(1 for s in status.values() if s in TERMINAL)
    f.lost = [t for t in ids if status.get(t) not in TERMINAL]
    for s in status.values():
        f.by_status[s] = f.by_status.get(s, 0) + 1
    f.dead_letters = _rows(engine, "SELECT count(*) FROM dead_letters WHERE original_task_id = ANY(CAST(:ids AS uuid[]))",
                           ids=ids)[0][0]
    return status


def check_audit(engine: Engine, accepted: dict[str, Spec], f: Figures) -> None:
    """Finished twice, ran after revoke, started early: from every recorded transition."""
    history: dict[str, list] = defaultdict(list)
    for r in _rows(engine, "SELECT task_id::text, old_status, new_status, started_at, scheduled_at, attempts "
                           "FROM chaos_audit ORDER BY seq"):
        history[r[0]].append(r)
    for task_id, spec in accepted.items():
        rows = history.get(task_id, [])
        if sum(1 for r in rows if r[2] in TERMINAL) > 1:
            f.finished_twice.append(task_id)
        revoked_at = next((i for i, r in enumerate(rows) if r[2] == "revoked"), None)
        if revoked_at is not None and len(rows) > revoked_at + 1:
            f.ran_after_revoke.append(task_id)
        runs = [r for r in rows if r[2] == "running"]
        f.attempts_total += len(runs)
        f.recovered_runs += sum(1 for r in rows if r[1] == "running" and r[2] == "queued")
        if spec.scheduled_at:
            f.delayed += 1
        if any(r[4] is not None and r[3] is not None and r[3] < r[4] for r in runs):
            f.started_early.append(task_id)
    twice = _rows(engine, "SELECT task_id::text FROM chaos_events WHERE webhook_event = '' "
                          "AND status IN ('success', 'failure', 'revoked') GROUP BY task_id HAVING count(*) > 1")
    f.finished_twice = sorted(set(f.finished_twice) | {r[0] for r in twice if r[0] in accepted})


def queued_waits(engine: Engine, f: Figures) -> None:
    """How long tasks sat in `queued` before moving on: every recovery path (lease, lost message,
    dead worker's prefetched messages) acts within seconds, so a long wait is a stuck task."""
    row = _rows(engine, "SELECT coalesce(extract(epoch FROM max(next_at - at)), 0), "
                        "count(*) FILTER (WHERE next_at - at > make_interval(secs => :limit)) FROM ("
                        "  SELECT at, new_status, lead(at) OVER (PARTITION BY task_id ORDER BY seq) AS next_at "
                        "  FROM chaos_audit) w WHERE new_status = 'queued' AND next_at IS NOT NULL",
                limit=f.stuck_after)[0]
    f.longest_queued, f.stuck = float(row[0]), row[1]


def delayed_started_early(engine: Engine, accepted: dict[str, Spec]) -> list[str]:
    """Delayed tasks whose first run began before the scheduled_at the client asked for."""
    from datetime import datetime

    first = dict(_rows(engine, "SELECT task_id::text, min(started_at) FROM chaos_audit WHERE new_status = 'running' "
                               "GROUP BY task_id"))
    out = []
    for task_id, spec in accepted.items():
        started = first.get(task_id)
        if spec.scheduled_at and started is not None and started < datetime.fromisoformat(spec.scheduled_at):
            out.append(task_id)
    return out


def check_webhooks(engine: Engine, accepted: dict[str, Spec], status: dict[str, str],
                   receiver: WebhookReceiver, f: Figures) -> None:
    expected = {t: WEBHOOK_EVENT[status[t]] for t, spec in accepted.items()
                if spec.body.get("callback_url") and status.get(t) in TERMINAL}
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    count: dict[tuple[str, str], int] = defaultdict(int)
    with receiver.lock:
        for d in receiver.accepted:
            ids[(d.task_id, d.event)].add(d.webhook_id)
            count[(d.task_id, d.event)] += 1
        f.webhooks_refused_first = receiver.refused
    f.webhooks_expected = len(expected)
    f.webhooks_delivered = sum(1 for t, e in expected.items() if (t, e) in ids)
    f.webhooks_missing = [t for t, e in expected.items() if (t, e) not in ids]
    f.webhook_dup_ids = [f"{t} {e}" for (t, e), got in ids.items() if len(got) > 1]
    f.webhook_redeliveries = sum(n - 1 for n in count.values() if n > 1)
    f.deliveries_failed = _rows(engine, "SELECT count(*) FROM webhook_deliveries WHERE status = 'failure'")[0][0]
    f.delivery_rows_doubled = [f"{r[0]} {r[1]}" for r in _rows(
        engine, "SELECT task_id::text, event FROM webhook_deliveries WHERE replay_of_id IS NULL "
                "GROUP BY task_id, event HAVING count(*) > 1")]


def check_websocket(engine: Engine, ids: list[str], ws: WsClient, f: Figures) -> None:
    """Every terminal event of the user's tasks (submitted or fired by a schedule)."""
    expected = terminal_events(engine, ids)
    seen = ws.seen()
    f.ws_expected = len(expected)
    f.ws_seen = sum(1 for e in expected if e in seen)
    f.ws_missing = sorted(e for e in expected if e not in seen)
    f.ws_connects, f.ws_gaps = ws.stats.connects, ws.stats.gaps


def run_all(engine: Engine, accepted: dict[str, Spec], not_accepted: int, user_id: int,
            receiver: WebhookReceiver, ws: WsClient, cancels: dict[str, int], stuck_after: float) -> Figures:
    f = Figures(not_accepted=not_accepted, cancels=dict(cancels), stuck_after=stuck_after)
    status = check_tasks(engine, accepted, user_id, f)
    check_audit(engine, accepted, f)
    queued_waits(engine, f)
    f.started_early = sorted(set(f.started_early) | set(delayed_started_early(engine, accepted)))
    check_webhooks(engine, accepted, status, receiver, f)
    check_websocket(engine, list(accepted) + recurring.task_ids(engine), ws, f)
    f.schedules = recurring.figures(engine)
    return f
