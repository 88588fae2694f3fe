"""Working hours: opening, closing and open-time timers, across DST changes and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distribution.engine.schedule import (
    add_open_time,
    has_open_time,
    is_holiday,
    is_open,
    next_close,
    next_open,
    parse_clock,
)
from distribution.engine.types import Interval, ScheduleSnapshot

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")
MIN = timedelta(minutes=1)


def office(
    tz: str = "Europe/Amsterdam", *, holidays: frozenset[date] = frozenset()
) -> ScheduleSnapshot:
    """Monday to Friday, 09:00–17:00."""
    return ScheduleSnapshot(tz, tuple(Interval(d, time(9), time(17)) for d in range(5)), holidays)


def daily(tz: str, start: time, end: time) -> ScheduleSnapshot:
    return ScheduleSnapshot(tz, tuple(Interval(d, start, end) for d in range(7)))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- plain office hours -------------------------------------------------------------------


def test_open_inside_hours_and_closed_at_the_exclusive_end() -> None:
    s = office()
    assert is_open(s, datetime(2024, 6, 3, 9, 0, tzinfo=AMS))  # a Monday
    assert is_open(s, datetime(2024, 6, 3, 16, 59, tzinfo=AMS))
    assert not is_open(s, datetime(2024, 6, 3, 17, 0, tzinfo=AMS))
    assert not is_open(s, datetime(2024, 6, 3, 8, 59, tzinfo=AMS))
    assert not is_open(s, datetime(2024, 6, 8, 12, 0, tzinfo=AMS))  # Saturday


def test_next_open_is_t_itself_when_open_and_the_next_opening_otherwise() -> None:
    s = office()
    t = datetime(2024, 6, 3, 10, 0, tzinfo=AMS)
    assert next_open(s, t) is t
    assert next_open(s, datetime(2024, 6, 7, 18, 0, tzinfo=AMS)) == datetime(
        2024, 6, 10, 9, 0, tzinfo=AMS
    )


def test_claim_timer_runs_over_the_weekend_in_open_time_only() -> None:
    s = office()
    friday = datetime(2024, 6, 7, 16, 50, tzinfo=AMS)
    assert add_open_time(s, friday, timedelta(minutes=15)) == datetime(
        2024, 6, 10, 9, 5, tzinfo=AMS
    )


def test_the_agent_has_until_the_next_open_hours_plus_the_time_delay() -> None:
    # Seed 001: a lead that comes in at night gives the agent until the next opening plus
    # the claim time. Saturday night to Monday crosses the spring-forward night too.
    s = office()
    saturday_night = datetime(2024, 3, 30, 23, 0, tzinfo=AMS)
    expires = add_open_time(s, saturday_night, timedelta(minutes=15))
    assert expires == datetime(2024, 4, 1, 9, 15, tzinfo=AMS)
    assert expires == utc(2024, 4, 1, 7, 15)  # CEST by then


def test_shifts_pause_the_timer_over_the_lunch_break() -> None:
    s = ScheduleSnapshot(
        "Europe/Amsterdam",
        (Interval(0, time(8), time(12)), Interval(0, time(14), time(17))),
    )
    t = datetime(2024, 6, 3, 11, 50, tzinfo=AMS)
    assert add_open_time(s, t, timedelta(minutes=20)) == datetime(2024, 6, 3, 14, 10, tzinfo=AMS)
    assert next_close(s, t) == datetime(2024, 6, 3, 12, 0, tzinfo=AMS)
    assert next_close(s, datetime(2024, 6, 3, 12, 30, tzinfo=AMS)) == datetime(
        2024, 6, 3, 17, 0, tzinfo=AMS
    )


def test_end_of_day_written_as_24_00() -> None:
    assert parse_clock("24:00") == time(0)
    assert parse_clock("09:30") == time(9, 30)
    with pytest.raises(ValueError):
        parse_clock("25:00")
    s = daily("Europe/Amsterdam", parse_clock("18:00"), parse_clock("24:00"))
    assert is_open(s, datetime(2024, 6, 3, 23, 59, tzinfo=AMS))
    assert not is_open(s, datetime(2024, 6, 4, 0, 0, tzinfo=AMS))
    assert next_close(s, datetime(2024, 6, 3, 20, 0, tzinfo=AMS)) == datetime(
        2024, 6, 4, 0, 0, tzinfo=AMS
    )


def test_whole_days_run_together_and_a_full_week_never_closes() -> None:
    always = daily("Europe/Amsterdam", time(0), time(0))
    t = datetime(2024, 6, 3, 12, 0, tzinfo=AMS)
    assert is_open(always, t)
    assert next_close(always, t) is None
    assert add_open_time(always, t, timedelta(days=40)) == t + timedelta(days=40)


# --- DST ----------------------------------------------------------------------------------


def test_amsterdam_spring_forward_skips_the_missing_hour() -> None:
    night = daily("Europe/Amsterdam", time(0), time(6))
    t = datetime(2024, 3, 31, 1, 50, tzinfo=AMS)  # 10 minutes before 02:00 CET → 03:00 CEST
    assert add_open_time(night, t, timedelta(minutes=30)) == utc(2024, 3, 31, 1, 20)
    assert add_open_time(night, t, timedelta(minutes=30)).astimezone(AMS).hour == 3
    # That night has only five real hours of 00:00–06:00.
    midnight = datetime(2024, 3, 31, 0, 0, tzinfo=AMS)
    assert next_close(night, midnight) - next_open(night, midnight) == timedelta(hours=5)  # type: ignore[operator]


def test_amsterdam_fall_back_counts_the_repeated_hour_once_more() -> None:
    night = daily("Europe/Amsterdam", time(0), time(6))
    t = utc(2024, 10, 27, 0, 50)  # 02:50 CEST, the first time
    expires = add_open_time(night, t, timedelta(minutes=30))
    assert expires == utc(2024, 10, 27, 1, 20)  # 02:20 CET, the second time
    assert expires.astimezone(AMS).fold == 1
    midnight = datetime(2024, 10, 27, 0, 0, tzinfo=AMS)
    assert next_close(night, midnight) - next_open(night, midnight) == timedelta(hours=7)  # type: ignore[operator]


def test_amsterdam_round_the_clock_timer_is_real_time_across_both_changes() -> None:
    always = daily("Europe/Amsterdam", time(0), time(0))
    spring = datetime(2024, 3, 30, 12, 0, tzinfo=AMS)
    assert add_open_time(always, spring, timedelta(hours=24)) == datetime(
        2024, 3, 31, 13, 0, tzinfo=AMS
    )
    autumn = datetime(2024, 10, 26, 12, 0, tzinfo=AMS)
    assert add_open_time(always, autumn, timedelta(hours=24)) == datetime(
        2024, 10, 27, 11, 0, tzinfo=AMS
    )


def test_new_york_spring_forward() -> None:
    night = daily("America/New_York", time(0), time(6))
    t = datetime(2024, 3, 10, 1, 45, tzinfo=NY)  # EST; 02:00 becomes 03:00 EDT
    expires = add_open_time(night, t, timedelta(minutes=30))
    assert expires == datetime(2024, 3, 10, 3, 15, tzinfo=NY)
    assert expires == utc(2024, 3, 10, 7, 15)


def test_new_york_fall_back() -> None:
    night = daily("America/New_York", time(0), time(6))
    t = datetime(2024, 11, 3, 1, 45, tzinfo=NY)  # 01:45 EDT, the first time
    expires = add_open_time(night, t, timedelta(minutes=30))
    assert expires == utc(2024, 11, 3, 6, 15)  # 01:15 EST, the second time
    assert expires.astimezone(NY).fold == 1


def test_new_york_office_hours_over_the_fall_back_weekend() -> None:
    s = office("America/New_York")
    friday = datetime(2024, 11, 1, 16, 50, tzinfo=NY)  # EDT
    assert add_open_time(s, friday, timedelta(minutes=15)) == utc(2024, 11, 4, 14, 5)  # 09:05 EST


def test_interval_starting_in_the_spring_gap_opens_at_the_change() -> None:
    s = ScheduleSnapshot("Europe/Amsterdam", (Interval(6, time(2, 30), time(4)),))
    sunday = datetime(2024, 3, 31, 0, 0, tzinfo=AMS)
    assert next_open(s, sunday) == datetime(2024, 3, 31, 3, 0, tzinfo=AMS)
    assert next_close(s, sunday) == datetime(2024, 3, 31, 4, 0, tzinfo=AMS)


def test_interval_starting_in_the_repeated_hour_opens_at_its_first_occurrence() -> None:
    s = ScheduleSnapshot("Europe/Amsterdam", (Interval(6, time(2, 30), time(4)),))
    sunday = datetime(2024, 10, 27, 0, 0, tzinfo=AMS)
    assert next_open(s, sunday) == utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    assert next_close(s, sunday) == utc(2024, 10, 27, 3, 0)  # 04:00 CET


# --- holidays -----------------------------------------------------------------------------


def test_holidays_close_whole_days_and_delay_the_timer() -> None:
    christmas = frozenset({date(2024, 12, 25), date(2024, 12, 26)})
    s = office(holidays=christmas)
    assert not is_open(s, datetime(2024, 12, 25, 10, 0, tzinfo=AMS))
    assert is_holiday(s, datetime(2024, 12, 25, 10, 0, tzinfo=AMS))
    assert not is_holiday(s, datetime(2024, 12, 24, 10, 0, tzinfo=AMS))
    assert next_open(s, datetime(2024, 12, 25, 10, 0, tzinfo=AMS)) == datetime(
        2024, 12, 27, 9, 0, tzinfo=AMS
    )
    t = datetime(2024, 12, 24, 16, 55, tzinfo=AMS)
    assert add_open_time(s, t, timedelta(minutes=15)) == datetime(2024, 12, 27, 9, 10, tzinfo=AMS)


def test_a_holiday_is_a_local_day() -> None:
    s = office(holidays=frozenset({date(2024, 12, 25)}))
    # 23:30 UTC on the 24th is already the 25th in Amsterdam.
    assert is_holiday(s, utc(2024, 12, 24, 23, 30))


def test_holiday_cuts_a_night_shift_at_midnight() -> None:
    s = ScheduleSnapshot(
        "Europe/Amsterdam",
        (Interval(1, time(22), time(6)),),  # Tuesday 22:00 to Wednesday 06:00
        frozenset({date(2024, 12, 25)}),  # a Wednesday
    )
    assert is_open(s, datetime(2024, 12, 24, 23, 0, tzinfo=AMS))
    assert not is_open(s, datetime(2024, 12, 25, 1, 0, tzinfo=AMS))
    assert next_close(s, datetime(2024, 12, 24, 23, 0, tzinfo=AMS)) == datetime(
        2024, 12, 25, 0, 0, tzinfo=AMS
    )
    # Without the holiday the shift runs on into Wednesday morning.
    plain = ScheduleSnapshot("Europe/Amsterdam", s.intervals)
    assert is_open(plain, datetime(2024, 12, 25, 1, 0, tzinfo=AMS))


def test_round_the_clock_schedule_closes_on_a_holiday_far_ahead() -> None:
    far = date(2026, 1, 1)
    s = ScheduleSnapshot(
        "Europe/Amsterdam", daily("Europe/Amsterdam", time(0), time(0)).intervals, frozenset({far})
    )
    assert next_close(s, datetime(2024, 6, 3, tzinfo=AMS)) == datetime(2026, 1, 1, tzinfo=AMS)


# --- edges --------------------------------------------------------------------------------


def test_no_schedule_means_always_open_and_real_time() -> None:
    t = datetime(2024, 3, 31, 1, 50, tzinfo=AMS)
    assert is_open(None, t)
    assert next_open(None, t) is t
    assert next_close(None, t) is None
    assert add_open_time(None, t, timedelta(minutes=30)) == datetime(2024, 3, 31, 3, 20, tzinfo=AMS)


def test_schedule_without_open_time_is_refused_clearly() -> None:
    never = ScheduleSnapshot("Europe/Amsterdam")
    t = datetime(2024, 6, 3, tzinfo=AMS)
    assert not has_open_time(never)
    assert has_open_time(None)
    assert not is_open(never, t)
    for call in (
        lambda: next_open(never, t),
        lambda: next_close(never, t),
        lambda: add_open_time(never, t, MIN),
    ):
        with pytest.raises(ValueError, match="no open interval"):
            call()


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        is_open(office(), datetime(2024, 6, 3, 10, 0))
    with pytest.raises(ValueError):
        add_open_time(office(), datetime(2024, 6, 3, tzinfo=AMS), -MIN)


def test_zero_duration_is_t() -> None:
    t = datetime(2024, 6, 8, 12, 0, tzinfo=AMS)  # closed
    assert add_open_time(office(), t, timedelta(0)) is t


def test_bad_interval_and_zone_are_refused() -> None:
    with pytest.raises(ValueError):
        Interval(7, time(9), time(17))
    with pytest.raises(Exception):  # noqa: B017 - zoneinfo raises its own error type
        ScheduleSnapshot("Mars/Olympus_Mons")


# --- properties ---------------------------------------------------------------------------

ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
# Boundaries stay clear of the hours in which these zones change their clocks (01:00–03:00
# local), where the schedule deliberately takes the hull of repeated or missing wall times;
# elsewhere "open" means exactly "the wall clock is inside an interval".
BOUNDARY = st.builds(time, st.integers(4, 23), st.sampled_from([0, 15, 30, 45]))


@st.composite
def schedules(draw: st.DrawFn) -> ScheduleSnapshot:
    intervals = draw(
        st.lists(
            st.builds(
                Interval,
                st.integers(0, 6),
                BOUNDARY,
                st.one_of(BOUNDARY, st.just(time(0))),
            ),
            min_size=1,
            max_size=6,
        )
    )
    holidays = draw(st.frozensets(st.dates(date(2024, 1, 1), date(2024, 12, 31)), max_size=12))
    return ScheduleSnapshot(draw(st.sampled_from(ZONES)), tuple(intervals), holidays)


instants = st.builds(
    lambda minutes: utc(2024, 1, 1) + timedelta(minutes=minutes),
    st.integers(0, 366 * 24 * 60),
)
durations = st.builds(lambda m: timedelta(minutes=m), st.integers(0, 3 * 24 * 60))


def wall_clock_open(s: ScheduleSnapshot, u: datetime) -> bool:
    """Reference: is the local wall clock at ``u`` inside an interval of its local date?"""
    local = u.astimezone(s.tz)
    day, wall = local.date(), local.time().replace(tzinfo=None)
    if day in s.holidays:
        return False
    for iv in s.intervals:
        wraps = iv.end <= iv.start
        if iv.weekday == day.weekday() and iv.start <= wall and (wraps or wall < iv.end):
            return True
        if wraps and iv.weekday == (day.weekday() - 1) % 7 and wall < iv.end:
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(schedules(), instants)
def test_is_open_matches_the_wall_clock(s: ScheduleSnapshot, u: datetime) -> None:
    assert is_open(s, u) == wall_clock_open(s, u)


@settings(max_examples=60, deadline=None)
@given(schedules(), instants, durations)
def test_add_open_time_counts_exactly_the_open_minutes(
    s: ScheduleSnapshot, t: datetime, d: timedelta
) -> None:
    end = add_open_time(s, t, d)
    minutes = int((end - t) / MIN)
    open_minutes = sum(wall_clock_open(s, t + i * MIN) for i in range(minutes))
    assert open_minutes == d / MIN
    if d:
        assert wall_clock_open(s, end - MIN)  # it ends on open time, not after a gap


@settings(max_examples=150, deadline=None)
@given(schedules(), instants, durations, durations)
def test_add_open_time_composes(
    s: ScheduleSnapshot, t: datetime, a: timedelta, b: timedelta
) -> None:
    assert add_open_time(s, t, a + b) == add_open_time(s, add_open_time(s, t, a), b)


@settings(max_examples=150, deadline=None)
@given(schedules(), instants)
def test_next_open_and_next_close_bracket_an_open_stretch(s: ScheduleSnapshot, t: datetime) -> None:
    opening = next_open(s, t)
    assert opening >= t
    assert is_open(s, opening)
    assert (opening == t) == is_open(s, t)
    if opening > t:
        assert not is_open(s, opening - MIN)  # boundaries are whole minutes
    closing = next_close(s, t)
    if closing is not None:
        assert closing > opening
        assert not is_open(s, closing)
        assert is_open(s, closing - MIN)


@settings(max_examples=100, deadline=None)
@given(schedules(), instants, durations, durations)
def test_add_open_time_is_monotonic_and_never_faster_than_real_time(
    s: ScheduleSnapshot, t: datetime, a: timedelta, b: timedelta
) -> None:
    short, long_ = sorted((a, b))
    assert add_open_time(s, t, short) <= add_open_time(s, t, long_)
    assert add_open_time(s, t, long_) - t >= long_
