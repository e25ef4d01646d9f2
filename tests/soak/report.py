"""Printing the samples as they come, and the verdict at the end.

Verdict rules (each failure is a violation; any violation makes the soak exit 1):
* RSS: per process, the mean of the last 3 samples against the mean of the first 3 after the
  warm-up; more than RSS_LIMIT (10%) growth is a leak. A process that died or was replaced
  (new pid) during the run is a violation too.
* Bounded series (row counts, stream length and pending entries, queued messages, the soak's
  Redis db memory, Postgres connections): the peak in the second half of the run may not exceed
  the peak between the end of the warm-up and mid-run by more than BOUND_LIMIT (10%) plus a
  small absolute slack (SLACK; sawtooth noise of a few rows). A table that keeps growing fails
  this; one that retention holds on a plateau passes.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import mean

from .sampler import Sample

RSS_LIMIT = 0.10
BOUND_LIMIT = 0.10
EDGE_SAMPLES = 3
SLACK = {
    "pg_connections": 3, "stream_len": 200, "stream_pending": 200, "queued": 100, "stored_messages": 100,
    "tasks": 100, "webhook_deliveries": 50, "webhook_attempts": 50, "task_events": 100, "dead_letters": 20,
    "redis_db_kb": 512,
}
SHORT = {
    "pg_connections": "pg", "stream_len": "xlen", "stream_pending": "xpend", "queued": "queue",
    "stored_messages": "msgs", "tasks": "tasks", "webhook_deliveries": "deliv", "webhook_attempts": "attmp",
    "task_events": "outbox", "dead_letters": "dead", "redis_db_kb": "rdb_kb",
}


ABBREVIATIONS = {"gateway": "gw", "worker": "wrk", "scheduler": "sched", "dispatcher": "disp", "notifier": "notif"}


def abbreviate(label: str) -> str:
    """A process label short enough for a column: scheduler-1 -> sched-1, gateway.2 -> gw.2."""
    kind, _, rest = label.partition("-") if "-" in label else label.partition(".")
    sep = label[len(kind)] if rest else ""
    return f"{ABBREVIATIONS.get(kind, kind)}{sep}{rest}"[:9]


class Table:
    """Prints one line per sample: rates, RSS per process (MB), then the bounded series."""

    def __init__(self, labels: list[str]):
        self.labels = labels
        self.previous: Sample | None = None

    def header(self) -> str:
        procs = " ".join(f"{abbreviate(label):>9}" for label in self.labels)
        series = " ".join(f"{name:>7}" for name in SHORT.values())
        return f"{'t(s)':>6} {'sub/s':>6} {'done/s':>6} {'deleted':>7} | {procs} | {series}"

    def line(self, s: Sample) -> str:
        p = self.previous
        span = (s.t - p.t) if p else 0
        sub = (s.submitted - p.submitted) / span if p and span > 0 else 0.0
        done = (s.finished - p.finished) / span if p and span > 0 else 0.0
        self.previous = s
        procs = " ".join(f"{s.rss_kb[label] / 1024:>9.1f}" if label in s.rss_kb else f"{'-':>9}"
                         for label in self.labels)
        series = " ".join(f"{s.series.get(name, 0):>7.0f}" for name in SHORT)
        return f"{s.t:>6.0f} {sub:>6.1f} {done:>6.1f} {s.deleted:>7.0f} | {procs} | {series}"


@dataclass
class Growth:
    label: str
    baseline_mb: float
    end_mb: float
    growth: float  # fraction
    replaced: bool  # died or restarted (different or missing pid at the end)


def rss_growth(after: list[Sample]) -> list[Growth]:
    first, last = after[:EDGE_SAMPLES], after[-EDGE_SAMPLES:]
    out = []
    for label, pid in first[0].pids.items():
        base = [s.rss_kb[label] for s in first if label in s.rss_kb]
        end = [s.rss_kb[label] for s in last if label in s.rss_kb]
        replaced = any(s.pids.get(label) != pid for s in last)
        if not base or not end:
            out.append(Growth(label, mean(base or [0]) / 1024, 0.0, 0.0, True))
            continue
        b, e = mean(base), mean(end)
        out.append(Growth(label, b / 1024, e / 1024, (e - b) / b, replaced))
    return out


@dataclass
class Bound:
    name: str
    early_peak: float
    late_peak: float
    end: float
    limit: float

    @property
    def ok(self) -> bool:
        return self.late_peak <= self.limit


def bounds(after: list[Sample]) -> list[Bound]:
    middle = (after[0].t + after[-1].t) / 2
    early = [s for s in after if s.t < middle]
    late = [s for s in after if s.t >= middle]
    out = []
    for name in SHORT:
        early_peak = max(s.series.get(name, 0) for s in early)
        late_peak = max(s.series.get(name, 0) for s in late)
        out.append(Bound(name, early_peak, late_peak, after[-1].series.get(name, 0),
                         early_peak * (1 + BOUND_LIMIT) + SLACK[name]))
    return out


def verdict(samples: list[Sample], warmup: float) -> tuple[list[str], list[str]]:
    """(report lines, violations)."""
    after = [s for s in samples if s.t >= warmup]
    if len(after) < 2 * EDGE_SAMPLES:
        return [f"only {len(after)} samples after the {warmup:.0f}s warm-up: too short to judge"], ["run too short"]
    lines, violations = [f"RSS after warm-up ({warmup:.0f}s): mean of the first {EDGE_SAMPLES} samples "
                         f"-> mean of the last {EDGE_SAMPLES}; limit +{RSS_LIMIT:.0%}",
                         f"  {'process':<16} {'start MB':>9} {'end MB':>9} {'growth':>8}"], []
    for g in rss_growth(after):
        flag = ""
        if g.replaced:
            flag = "  DIED OR RESTARTED"
            violations.append(f"{g.label} died or restarted")
        elif g.growth > RSS_LIMIT:
            flag = "  LEAK?"
            violations.append(f"{g.label} RSS grew {g.growth:+.1%}")
        lines.append(f"  {g.label:<16} {g.baseline_mb:>9.1f} {g.end_mb:>9.1f} {g.growth:>+8.1%}{flag}")
    lines += ["Bounded: peak in the second half <= peak from warm-up to mid-run +"
              f"{BOUND_LIMIT:.0%} + slack",
              f"  {'series':<20} {'early peak':>10} {'late peak':>10} {'end':>10} {'limit':>10}  ok"]
    for b in bounds(after):
        lines.append(f"  {b.name:<20} {b.early_peak:>10.0f} {b.late_peak:>10.0f} {b.end:>10.0f} {b.limit:>10.0f}  "
                     f"{'yes' if b.ok else 'NO'}")
        if not b.ok:
            violations.append(f"{b.name} kept growing: {b.early_peak:.0f} -> {b.late_peak:.0f}")
    used = [s.redis_used_memory / 2**20 for s in (after[0], after[-1])]
    size = [s.database_bytes / 2**20 for s in (after[0], after[-1])]
    lines.append(f"Informative: Redis instance used_memory (shared with other users) {used[0]:.1f} -> {used[1]:.1f} MB; "
                 f"soak database on disk {size[0]:.1f} -> {size[1]:.1f} MB")
    return lines, violations
