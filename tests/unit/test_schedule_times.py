"""Recurring schedule times (shared.schedules): cron in time zones (DST included), intervals,
the crontab semantics APScheduler 3.x reads differently, and the misfire policies."""
from datetime import datetime, timedelta, timezone

import pytest

from shared import schedules
from shared.schedules import (
    CronTiming,
    IntervalTiming,
    ScheduleError,
    check_cron,
    first_fire,
    latest_fire,
    plan,
    timing,
    zone,
)

UTC = timezone.utc
PARIS = zone("Europe/Paris")
NEW_YORK = zone("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(t, start: datetime, count: int) -> list[datetime]:
    out = [t.first_at_or_after(start)]
    while len(out) < count:
        out.append(t.next_after(out[-1]))
    return [f.astimezone(UTC) for f in out]


# --- cron ------------------------------------------------------------------------------------


def test_cron_fires_at_local_time_in_its_zone():
    t = timing("30 9 * * *", None, "Europe/Paris")
    # winter: CET = UTC+1
    assert first_fire(t, utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 8, 30)
    # summer: CEST = UTC+2
    assert first_fire(t, utc(2026, 7, 10, 6)) == utc(2026, 7, 10, 7, 30)


def test_first_fire_is_at_or_after_now_on_whole_seconds():
    t = timing("* * * * *", None)
    assert first_fire(t, utc(2026, 1, 1, 10, 0, 0, 1)) == utc(2026, 1, 1, 10, 1)
    assert first_fire(t, utc(2026, 1, 1, 10, 0, 0)) == utc(2026, 1, 1, 10, 0)


def test_daily_job_keeps_local_time_across_both_dst_changes():
    t = CronTiming("0 9 * * *", PARIS)
    spring = fires(t, utc(2026, 3, 28), 3)  # clocks go forward on 2026-03-29
    assert spring == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    autumn = fires(t, utc(2026, 10, 24), 3)  # clocks go back on 2026-10-25
    assert autumn == [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]
    assert all(f.astimezone(PARIS).hour == 9 for f in spring + autumn)


def test_fixed_time_in_the_repeated_hour_fires_once():
    t = CronTiming("30 2 * * *", PARIS)  # 02:30 happens twice on 2026-10-25
    got = fires(t, utc(2026, 10, 24), 3)
    assert got == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_wildcard_hour_job_runs_in_both_repeated_hours():
    t = CronTiming("0 * * * *", PARIS)
    got = fires(t, utc(2026, 10, 24, 23), 4)  # local 01:00, 02:00 (CEST), 02:00 (CET), 03:00
    assert got == [utc(2026, 10, 24, 23), utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)]


def test_fixed_time_in_the_skipped_hour_fires_once_that_day():
    t = CronTiming("30 2 * * *", PARIS)  # 02:30 does not exist on 2026-03-29
    got = fires(t, utc(2026, 3, 28), 3)
    assert got[0] == utc(2026, 3, 28, 1, 30)
    assert got[1].astimezone(PARIS).date().isoformat() == "2026-03-29"
    assert got[2] == utc(2026, 3, 30, 0, 30)
    assert len(set(got)) == 3


def test_new_york_dst_next_run():
    t = CronTiming("0 12 * * *", NEW_YORK)  # EST (UTC-5) until 2026-03-08, then EDT (UTC-4)
    assert fires(t, utc(2026, 3, 7), 2) == [utc(2026, 3, 7, 17), utc(2026, 3, 8, 16)]


@pytest.mark.parametrize(
    "expr, start, expected_weekdays",
    [
        ("0 0 * * 0", utc(2026, 1, 1), {"Sun"}),
        ("0 0 * * 7", utc(2026, 1, 1), {"Sun"}),
        ("0 0 * * 1-5", utc(2026, 1, 1), {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 0 * * 0-2", utc(2026, 1, 1), {"Sun", "Mon", "Tue"}),
        ("0 0 * * sat,sun", utc(2026, 1, 1), {"Sat", "Sun"}),
        ("0 0 * * mon-sun", utc(2026, 1, 1), {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}),
        ("0 0 * * */2", utc(2026, 1, 1), {"Sun", "Tue", "Thu", "Sat"}),
        ("0 0 * * 1-7/3", utc(2026, 1, 1), {"Mon", "Thu", "Sun"}),
    ],
)
def test_day_of_week_uses_crontab_numbering(expr, start, expected_weekdays):
    got = fires(CronTiming(expr, zone("UTC")), start, 21)
    assert {f.strftime("%a") for f in got} == expected_weekdays


def test_day_of_month_or_day_of_week_like_cron():
    """Both restricted: cron fires on either (the 1st, and every Monday)."""
    got = fires(CronTiming("0 0 1 * 1", zone("UTC")), utc(2026, 6, 1), 6)
    assert got == [utc(2026, 6, 1), utc(2026, 6, 8), utc(2026, 6, 15), utc(2026, 6, 22), utc(2026, 6, 29), utc(2026, 7, 1)]
    # one of them a wildcard: both must match (here: every Monday)
    assert fires(CronTiming("0 0 * * 1", zone("UTC")), utc(2026, 6, 1), 2) == [utc(2026, 6, 1), utc(2026, 6, 8)]


@pytest.mark.parametrize("macro, expected", [
    ("@hourly", utc(2026, 1, 1, 11)), ("@daily", utc(2026, 1, 2)), ("@weekly", utc(2026, 1, 4)),
    ("@monthly", utc(2026, 2, 1)), ("@yearly", utc(2027, 1, 1)),
])
def test_macros(macro, expected):
    assert first_fire(CronTiming(macro, zone("UTC")), utc(2026, 1, 1, 10, 30)) == expected


@pytest.mark.parametrize("expr", [
    "61 * * * *", "* * *", "* * * * * *", "*/0 * * * *", "5-1 * * * *", "0 25 * * *", "0 0 32 * *",
    "0 0 * 13 *", "0 0 * * 8", "0 0 * * mon#1", "0 0 * * funday", "a b c d e", "", "   ", "0,, * * * *",
    "-1 * * * *", "0 0 * * 5-1", "@every_now_and_then", "0 0 * * */0", "x" * 300,
])
def test_invalid_cron_is_refused(expr):
    with pytest.raises(ScheduleError):
        CronTiming(expr, zone("UTC"))


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_cron_that_never_fires_is_refused(expr):
    with pytest.raises(ScheduleError, match="never fires"):
        check_cron(expr, zone("UTC"), utc(2026, 1, 1))


def test_rare_but_real_cron_is_accepted():
    check_cron("0 0 29 2 *", zone("UTC"), utc(2096, 3, 1))  # 2100 is no leap year: next in 2104
    check_cron("0 0 31 2 1", zone("UTC"), utc(2026, 1, 1))  # day 31 OR Monday: every Monday
    check_cron("0 0 last * *", zone("UTC"), utc(2026, 1, 1))


@pytest.mark.parametrize("name", ["", "utc", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "localtime", "Europe/Paris\x00", None, 5])
def test_unknown_time_zones_are_refused(name):
    with pytest.raises(ScheduleError):
        zone(name)


def test_known_time_zones():
    for name in ("UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Asia/Kolkata", "Etc/GMT+5"):
        assert zone(name).key == name


def test_exactly_one_of_cron_and_interval():
    with pytest.raises(ScheduleError):
        timing("* * * * *", 60)
    with pytest.raises(ScheduleError):
        timing(None, None)


# --- intervals -------------------------------------------------------------------------------


def test_interval_first_fire_is_one_interval_after_the_next_whole_second():
    assert first_fire(IntervalTiming(10), utc(2026, 1, 1, 0, 0, 0)) == utc(2026, 1, 1, 0, 0, 10)
    assert first_fire(IntervalTiming(10), utc(2026, 1, 1, 0, 0, 0, 300000)) == utc(2026, 1, 1, 0, 0, 11)


def test_interval_ignores_time_zones_and_dst():
    t = IntervalTiming(3600, anchor=utc(2026, 10, 24, 23))
    assert fires(t, utc(2026, 10, 24, 23), 4) == [utc(2026, 10, 24, 23) + timedelta(hours=h) for h in range(4)]


@pytest.mark.parametrize("seconds", [0, -1, schedules.MAX_INTERVAL_SECONDS + 1, 1.5, True, "60"])
def test_invalid_intervals(seconds):
    with pytest.raises(ScheduleError):
        IntervalTiming(seconds)


# --- misfires --------------------------------------------------------------------------------


def test_on_time_fire_runs_under_both_policies():
    t = IntervalTiming(60, anchor=utc(2026, 1, 1, 12))
    for policy in ("run_once", "skip"):
        p = plan(t, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 0, 0, 400000), policy, grace_seconds=60)
        assert p.fire_at == utc(2026, 1, 1, 12) and p.next_run_at == utc(2026, 1, 1, 12, 1) and not p.missed


def test_run_once_fires_the_latest_missed_fire_only():
    t = IntervalTiming(60, anchor=utc(2026, 1, 1, 12))
    now = utc(2026, 1, 1, 12, 10, 30)  # fires at 12:00 .. 12:10 were all due: 11 of them
    p = plan(t, utc(2026, 1, 1, 12), now, "run_once", grace_seconds=60)
    assert p.fire_at == utc(2026, 1, 1, 12, 10) and p.next_run_at == utc(2026, 1, 1, 12, 11) and p.missed


def test_run_once_runs_even_a_very_late_fire():
    t = CronTiming("0 3 * * *", zone("UTC"))
    p = plan(t, utc(2026, 1, 1, 3), utc(2026, 1, 20, 12), "run_once", grace_seconds=60)
    assert p.fire_at == utc(2026, 1, 20, 3) and p.next_run_at == utc(2026, 1, 21, 3)


def test_skip_drops_fires_later_than_the_grace():
    t = IntervalTiming(60, anchor=utc(2026, 1, 1, 12))
    p = plan(t, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 10, 30), "skip", grace_seconds=20)
    assert p.fire_at is None and p.next_run_at == utc(2026, 1, 1, 12, 11) and p.missed


def test_skip_runs_the_latest_fire_within_the_grace():
    t = IntervalTiming(60, anchor=utc(2026, 1, 1, 12))
    p = plan(t, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 10, 5), "skip", grace_seconds=20)
    assert p.fire_at == utc(2026, 1, 1, 12, 10) and p.next_run_at == utc(2026, 1, 1, 12, 11) and p.missed


def test_next_run_is_always_in_the_future_and_on_the_grid():
    t = CronTiming("*/5 * * * *", PARIS)
    due = utc(2026, 3, 1, 0, 0)
    for minutes in (0, 3, 5, 61, 60 * 24 * 40):
        now = due + timedelta(minutes=minutes, seconds=1)
        p = plan(t, due, now, "run_once", grace_seconds=60)
        assert p.fire_at <= now < p.next_run_at
        assert p.next_run_at - p.fire_at == timedelta(minutes=5)
        assert p.fire_at.minute % 5 == 0 and p.fire_at.second == 0


def test_latest_fire_after_a_long_outage_is_cheap():
    t = IntervalTiming(1, anchor=utc(2025, 1, 1))
    now = utc(2026, 1, 1, 0, 0, 0, 500000)
    assert latest_fire(t, utc(2025, 1, 1), now) == utc(2026, 1, 1)
    cron = CronTiming("* * * * *", zone("UTC"))
    assert latest_fire(cron, utc(2025, 1, 1), now) == utc(2026, 1, 1)


def test_task_name_carries_the_fire_time():
    from scheduler.recurring import task_name

    assert task_name("nightly", datetime(2026, 3, 1, 4, tzinfo=PARIS)) == "nightly @ 2026-03-01T03:00:00+00:00"
