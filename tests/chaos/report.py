"""Printing the figures of a run (plain text, one figure per line, greppable)."""
from __future__ import annotations

from .checks import Figures

SAMPLE = 5  # ids listed per failing figure


def _line(label: str, value, note: str = "") -> None:
    print(f"  {label:<34} {value}{('   ' + note) if note else ''}")


def _ids(items: list) -> str:
    return "" if not items else "e.g. " + ", ".join(str(i) for i in items[:SAMPLE])


def print_report(f: Figures, faults: dict[str, int], durations: dict[str, float], throughput: float,
                 log_dir: str, fault_errors: list[str]) -> None:
    print("\n================ chaos figures ================")
    print("tasks")
    _line("accepted (201)", f.accepted)
    _line("not accepted", f.not_accepted)
    _line("doubled submissions", f.extra_rows, f"({f.submit_retries} requests retried, {f.replayed} idempotent replays)")
    _line("terminal", f.terminal, " ".join(f"{k}={v}" for k, v in sorted(f.by_status.items())))
    _line("lost (not terminal)", len(f.lost), _ids(f.lost))
    _line("finished twice", len(f.finished_twice), _ids(f.finished_twice))
    _line("ran after revoke", len(f.ran_after_revoke), _ids(f.ran_after_revoke))
    _line("started early", len(f.started_early), _ids(f.started_early) or f"({f.delayed} delayed tasks)")
    _line("runs (claims) / recovered runs", f"{f.attempts_total} / {f.recovered_runs}")
    _line("longest wait in queued", f"{f.longest_queued:.1f} s")
    _line(f"stuck in queued (> {f.stuck_after:g} s)", f.stuck)
    _line("dead letters", f.dead_letters)
    _line("cancelled by API (200)", " ".join(f"{k}={v}" for k, v in sorted(f.cancels.items())) or 0)
    print("webhooks")
    _line("expected", f.webhooks_expected)
    _line("delivered", f.webhooks_delivered)
    _line("missing", len(f.webhooks_missing), _ids(f.webhooks_missing))
    _line("duplicate ids (same event)", len(f.webhook_dup_ids), _ids(f.webhook_dup_ids))
    _line("redeliveries with the same id", f.webhook_redeliveries)
    _line("first attempts refused (503)", f.webhooks_refused_first)
    _line("deliveries failed (exhausted)", f.deliveries_failed)
    _line("delivery rows doubled (Postgres)", len(f.delivery_rows_doubled), _ids(f.delivery_rows_doubled))
    print("websocket (/ws/tasks/)")
    _line("terminal events expected", f.ws_expected)
    _line("seen", f.ws_seen)
    _line("missing", len(f.ws_missing), _ids(f.ws_missing))
    _line("connections / replay gaps", f"{f.ws_connects} / {f.ws_gaps}")
    print("recurring schedules (2 scheduler replicas)")
    _line("fires / tasks created", f"{f.schedules.get('fires')} / {f.schedules.get('tasks')}")
    _line("fires that ran twice", f.schedules.get("doubled"))
    _line("schedule tasks not terminal", f.schedules.get("not_terminal"))
    print("faults injected")
    for kind, n in sorted(faults.items()):
        _line(kind, n)
    _line("total", sum(faults.values()))
    if fault_errors:
        _line("fault errors", len(fault_errors), "; ".join(e[:120] for e in fault_errors[:3]))
    print("timing")
    for name, seconds in durations.items():
        _line(name, f"{seconds:.1f} s")
    _line("throughput during chaos", f"{throughput:.1f} tasks/s (terminal transitions / chaos time)")
    print(f"service logs: {log_dir}")
    bad = {k: v for k, v in f.failures().items() if v}
    print("RESULT:", "PASS (every lost/missing/twice figure is 0)" if not bad else f"FAIL {bad}")
