"""Recurring schedules: when they fire, and what a late fire does (the misfire policy).

Used by the gateway (validation, `next_run_at` on create/update/resume) and by the scheduler
(each fire). Fire times come from APScheduler's own triggers (`CronTrigger`, `IntervalTrigger`,
`OrTrigger`); this module only adapts the three places where APScheduler 3.x reads a crontab
differently from cron(8), so that a 5-field expression means what crontab users expect:

* day of week: cron counts 0 (and 7) = Sunday; APScheduler 3.x counts 0 = Monday (its
  documented "historical mistake", fixed only in 4.x). The field is rewritten to day names
  (`1-5` -> `mon,tue,wed,thu,fri`), which both read the same way.
* day of month *and* day of week restricted (neither starts with `*`): cron fires when
  EITHER matches (`0 0 1 * mon` = the 1st and every Monday); APScheduler requires both.
  Such an expression becomes an `OrTrigger` of the two.
* a fixed-time job (neither minute nor hour starts with `*`) whose local time occurs twice
  when clocks go back fires once, at the first occurrence, as in cron(8); wildcard jobs run in
  both hours (they are real, distinct hours). A local time skipped when clocks go forward
  fires once that day, an hour later on the wall clock (APScheduler keeps the offset in force
  before the change, e.g. 02:30 -> 03:30 CEST).

Cron fields: minute hour day-of-month month day-of-week, with `*`, lists, ranges, steps and
month/day names, plus the macros `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/
`@midnight`, `@hourly`. The day-of-month field also takes APScheduler's `last` (the last
day of the month). Interval schedules count elapsed seconds, so DST and time zones do
not affect them.

Misfire policies decide what happens when fires were missed (every scheduler was down, or
the schedule fell behind) -- a due fire is never run more than once either way:

* `run_once` (default): one task for the latest missed fire, however late; the earlier missed
  fires are dropped. Then the schedule continues with its next future fire.
* `skip`: the latest due fire runs only if it is at most `grace` seconds late
  (SCHEDULE_MISFIRE_GRACE_SECONDS, default 60: a scheduler restart or a slow moment is not a
  miss); otherwise no task at all, and the schedule continues with its next future fire.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

RUN_ONCE, SKIP = "run_once", "skip"
MISFIRE_POLICIES = (RUN_ONCE, SKIP)
MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 366 * 86400
MAX_CRON_LENGTH = 255
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbering: index = day number
_DOW_TERM = re.compile(r"^(\*|[0-7]|[a-z]{3})(?:-([0-7]|[a-z]{3}))?(?:/(\d{1,2}))?$")
_MICROSECOND = timedelta(microseconds=1)
_HORIZON = timedelta(days=366 * 50)
_MAX_STEPS = 100  # a fire skipped for DST needs one more step; this only bounds a bug
# Zone names that exist as files but are not IANA zones a schedule should use.
_NOT_ZONES = {"localtime", "Factory", "posixrules"}


class ScheduleError(ValueError):
    """An invalid cron expression, time zone or interval (the message says what is wrong)."""


@lru_cache(maxsize=1)
def _zone_names() -> frozenset:
    return frozenset(available_timezones() - _NOT_ZONES)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. "Europe/Paris", "UTC"); ScheduleError when unknown."""
    if not isinstance(name, str) or name not in _zone_names():
        raise ScheduleError(f'Unknown time zone "{name}"; use an IANA name such as "UTC" or "Europe/Paris".')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f'Unknown time zone "{name}".') from None


def _day(token: str, range_end: bool = False) -> int:
    if token.isdigit():
        return int(token)  # 0..7 (the regex allows nothing else); 7 is Sunday again
    if token in CRON_DAYS:
        index = CRON_DAYS.index(token)
        return 7 if range_end and index == 0 else index  # "mon-sun" ends on Sunday
    raise ScheduleError(f'Invalid day of week "{token}"; use 0-7 (0 and 7 are Sunday) or sun-sat.')


def weekdays(field: str) -> str:
    """A cron day-of-week field as APScheduler day names (see the module docstring)."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for term in field.lower().split(","):
        match = _DOW_TERM.match(term)
        if not match:
            raise ScheduleError(f'Invalid day-of-week value "{term}"; use 0-7 (0 and 7 are Sunday) or sun-sat.')
        first, last, step = match.groups()
        if first == "*":
            if last:
                raise ScheduleError(f'Invalid day-of-week value "{term}".')
            low, high = 0, 6
        else:
            low = _day(first)
            high = _day(last, range_end=True) if last else (6 if step else low)
        increment = int(step) if step else 1
        if increment < 1:
            raise ScheduleError("A step must be at least 1.")
        if low > high:
            raise ScheduleError(f'Invalid day-of-week range "{term}": its start is after its end.')
        days.update(d % 7 for d in range(low, high + 1, increment))
    return ",".join(CRON_DAYS[d] for d in sorted(days))


class Timing:
    """When a schedule fires. `first_at_or_after(t)` and `next_after(t)` return aware datetimes
    (or None when it never fires again)."""

    def first_at_or_after(self, moment: datetime) -> datetime | None:
        raise NotImplementedError

    def next_after(self, moment: datetime) -> datetime | None:
        raise NotImplementedError

    def initial(self, now: datetime) -> datetime | None:
        """The first fire of a schedule created (or resumed) at `now`."""
        return self.first_at_or_after(now)


class CronTiming(Timing):
    """`until` bounds the search (validation: an expression that matches no date, such as
    `0 0 30 2 *`, would otherwise be searched up to the year 9999, which takes a while)."""

    def __init__(self, expression: str, tz: ZoneInfo, until: datetime | None = None):
        if not isinstance(expression, str) or not expression.strip():
            raise ScheduleError("Enter a cron expression.")
        if len(expression) > MAX_CRON_LENGTH:
            raise ScheduleError(f"A cron expression has at most {MAX_CRON_LENGTH} characters.")
        text = MACROS.get(expression.strip().lower(), expression)
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleError(
                f"A cron expression has 5 fields (minute hour day-of-month month day-of-week); got {len(parts)}."
            )
        minute, hour, day, month, day_of_week = parts
        day = "*" if day == "?" else day
        self.tz = tz
        self.fixed_time = not minute.startswith("*") and not hour.startswith("*")
        names = weekdays(day_of_week)
        either = not day.startswith("*") and not day_of_week.startswith("*") and day_of_week != "?"
        try:
            if either:  # cron(8): day of month OR day of week
                self.trigger = OrTrigger([
                    CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=tz, end_date=until),
                    CronTrigger(minute=minute, hour=hour, month=month, day_of_week=names, timezone=tz, end_date=until),
                ])
            else:
                self.trigger = CronTrigger(
                    minute=minute, hour=hour, day=day, month=month, day_of_week=names, timezone=tz, end_date=until
                )
        except ScheduleError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ScheduleError(f"Invalid cron expression: {exc}.") from None

    def _repeated(self, moment: datetime) -> bool:
        """`moment` is the second occurrence of its local time (clocks went back)."""
        local = moment.astimezone(self.tz)
        return local.replace(fold=0).utcoffset() != local.utcoffset()

    def _from(self, start: datetime) -> datetime | None:
        """The first fire at or after `start`. Always asked with a UTC start and no previous
        fire: APScheduler 3.x rounds a previous fire up to the second in local time, which
        loses the DST fold and can return the same repeated-hour fire again."""
        # Compared and shifted in UTC only: Python compares and adds datetimes of one zone
        # by wall clock, ignoring the fold.
        start = start.astimezone(timezone.utc)
        for _ in range(_MAX_STEPS):
            fire = self.trigger.get_next_fire_time(None, start)
            if fire is None:
                return None
            fire = fire.astimezone(timezone.utc)
            if fire >= start and not (self.fixed_time and self._repeated(fire)):
                return fire
            start = max(start, fire) + _MICROSECOND
        raise ScheduleError("Could not compute the next fire time of this cron expression.")

    def first_at_or_after(self, moment: datetime) -> datetime | None:
        return self._from(moment)

    def next_after(self, moment: datetime) -> datetime | None:
        return self._from(moment.astimezone(timezone.utc) + _MICROSECOND)


class IntervalTiming(Timing):
    """Every `seconds` seconds of elapsed time, on the grid through `anchor`."""

    def __init__(self, seconds: int, anchor: datetime | None = None):
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise ScheduleError("interval_seconds must be a whole number of seconds.")
        if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
            raise ScheduleError(f"interval_seconds must be between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}.")
        self.seconds = seconds
        self.anchor = anchor

    def _trigger(self, anchor: datetime) -> IntervalTrigger:
        return IntervalTrigger(seconds=self.seconds, start_date=anchor.astimezone(timezone.utc), timezone=timezone.utc)

    def initial(self, now: datetime) -> datetime:
        # Whole seconds (like cron fire times), one interval after the next second starts.
        now = now.astimezone(timezone.utc)
        start = now.replace(microsecond=0) + timedelta(seconds=self.seconds + (1 if now.microsecond else 0))
        return self._trigger(start).get_next_fire_time(None, now)

    def first_at_or_after(self, moment: datetime) -> datetime:
        moment = moment.astimezone(timezone.utc)
        return self._trigger(self.anchor or moment).get_next_fire_time(None, moment)

    def next_after(self, moment: datetime) -> datetime:
        moment = moment.astimezone(timezone.utc)
        return self._trigger(self.anchor or moment).get_next_fire_time(moment, moment)


def timing(cron: str | None, interval_seconds: int | None, tz_name: str = "UTC", anchor: datetime | None = None) -> Timing:
    """The Timing of a schedule: exactly one of `cron` and `interval_seconds`. An interval
    schedule's fires lie on the grid through `anchor` (its current `next_run_at`)."""
    if (cron is None) == (interval_seconds is None):
        raise ScheduleError("Give exactly one of cron and interval_seconds.")
    if cron is not None:
        return CronTiming(cron, zone(tz_name))
    return IntervalTiming(interval_seconds, anchor)


def check_cron(expression: str, tz: ZoneInfo, now: datetime) -> None:
    """ScheduleError unless `expression` is valid and fires within the next 50 years (the
    rarest valid expressions, on February 29, recur every 4 to 8 years)."""
    if CronTiming(expression, tz, until=now + _HORIZON).first_at_or_after(now) is None:
        raise ScheduleError("This cron expression never fires.")


def first_fire(t: Timing, now: datetime) -> datetime | None:
    """`next_run_at` of a schedule created, changed or resumed at `now`. A cron expression
    that matches no date at all (`0 0 30 2 *`) raises ScheduleError."""
    fire = t.initial(now)
    if fire is None:
        raise ScheduleError("This cron expression never fires.")
    return fire.astimezone(timezone.utc)


def latest_fire(t: Timing, due_at: datetime, now: datetime) -> datetime:
    """The last fire time in [due_at, now], `due_at` being the schedule's due `next_run_at`.

    Searches back from `now` in growing windows, so a schedule that missed a month of fires
    costs a few trigger evaluations, not one per missed fire.
    """
    due_at, now = due_at.astimezone(timezone.utc), now.astimezone(timezone.utc)
    window = timedelta(seconds=60)
    while True:
        start = max(due_at, now - window)
        first = t.first_at_or_after(start)
        if first is not None and first <= now:
            latest = first
            while (following := t.next_after(latest)) is not None and following <= now:
                latest = following
            return latest
        if start <= due_at:
            return due_at
        window *= 4


@dataclass(frozen=True)
class FirePlan:
    """What the scheduler does with a due schedule."""

    fire_at: datetime | None  # create one task for this fire time; None: create none
    next_run_at: datetime | None  # the schedule's next fire, after `now`
    missed: bool  # earlier fires were dropped (run_once) or this one was skipped (skip)


def plan(t: Timing, due_at: datetime, now: datetime, policy: str, grace_seconds: float) -> FirePlan:
    """Apply the misfire policy to a schedule due at `due_at` (<= now); see the module docstring."""
    due_at, now = due_at.astimezone(timezone.utc), now.astimezone(timezone.utc)
    latest = latest_fire(t, due_at, now)
    following = t.next_after(latest)
    following = following.astimezone(timezone.utc) if following is not None else None
    if policy == SKIP and (now - latest).total_seconds() > grace_seconds:
        return FirePlan(None, following, True)
    return FirePlan(latest.astimezone(timezone.utc), following, latest != due_at)
