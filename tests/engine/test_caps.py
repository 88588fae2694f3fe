"""Cap windows in the rule's zone, remaining quota, and performance tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distribution.engine.caps import (
    remaining,
    scaled_cap,
    tier_multiplier,
    window_end,
    window_start,
)
from distribution.engine.types import PERIODS, AgentMetrics, Caps, PerformanceTier

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_windows_are_calendar_periods_in_the_rule_zone() -> None:
    now = datetime(2024, 3, 31, 12, 20, tzinfo=AMS)  # Sunday, CEST since 03:00
    assert window_start("hour", now, "Europe/Amsterdam") == datetime(2024, 3, 31, 12, tzinfo=AMS)
    assert window_start("day", now, "Europe/Amsterdam") == utc(2024, 3, 30, 23, 0)  # CET midnight
    assert window_start("week", now, "Europe/Amsterdam") == datetime(2024, 3, 25, tzinfo=AMS)
    assert window_start("month", now, "Europe/Amsterdam") == datetime(2024, 3, 1, tzinfo=AMS)
    # The spring-forward day is 23 hours long; the next week starts on Monday.
    assert window_end("day", now, AMS) - window_start("day", now, AMS) == timedelta(hours=23)
    assert window_end("week", now, AMS) == datetime(2024, 4, 1, tzinfo=AMS)
    assert window_end("month", now, AMS) == datetime(2024, 4, 1, tzinfo=AMS)


def test_the_repeated_hour_of_a_fall_back_night_is_its_own_window() -> None:
    first = utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    second = utc(2024, 10, 27, 1, 30)  # 02:30 CET
    assert window_start("hour", first, AMS) == utc(2024, 10, 27, 0, 0)
    assert window_start("hour", second, AMS) == utc(2024, 10, 27, 1, 0)
    assert window_end("day", second, AMS) - window_start("day", second, AMS) == timedelta(hours=25)


def test_week_starts_on_monday_and_month_on_the_first() -> None:
    sunday = datetime(2024, 11, 3, 20, 0, tzinfo=NY)
    assert window_start("week", sunday, NY) == datetime(2024, 10, 28, tzinfo=NY)
    assert window_end("month", datetime(2024, 12, 15, tzinfo=NY), NY) == datetime(
        2025, 1, 1, tzinfo=NY
    )


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError):
        window_start("fortnight", utc(2024, 1, 1), "UTC")


def test_remaining_takes_the_tightest_cap_and_counts_in_the_rule_zone() -> None:
    now = datetime(2024, 6, 5, 10, 0, tzinfo=AMS)  # Wednesday
    given = [
        utc(2024, 6, 4, 22, 30),  # 00:30 Wednesday in Amsterdam: today
        datetime(2024, 6, 5, 9, 15, tzinfo=AMS),  # today, this hour's predecessor
        datetime(2024, 6, 3, 12, 0, tzinfo=AMS),  # Monday: this week
    ]
    assert remaining(Caps(day=3), given, now, "Europe/Amsterdam") == 1
    assert remaining(Caps(day=3), given, now, "UTC") == 2  # in UTC the 22:30 lead was yesterday
    assert remaining(Caps(hour=1, day=5), given, now, "Europe/Amsterdam") == 1
    assert remaining(Caps(week=3), given, now, "Europe/Amsterdam") == 0
    assert remaining(Caps(), given, now, "Europe/Amsterdam") is None


def test_a_lost_lead_gives_no_quota_back() -> None:
    # Caps count every lead given in the window: the caller passes every timestamp, and
    # nothing subtracts leads that were later lost or reassigned.
    now = utc(2024, 6, 5, 12)
    given = [utc(2024, 6, 5, 9), utc(2024, 6, 5, 10)]
    assert remaining(Caps(day=2), given, now, "UTC") == 0


def test_performance_tiers_scale_caps() -> None:
    converting = AgentMetrics(leads=20, conversion_rate=0.25)
    slow = AgentMetrics(leads=20, speed_to_contact_attempt=timedelta(minutes=45))
    tiers = (
        PerformanceTier("conversion_rate", "gte", 0.20, 1.5),
        PerformanceTier("speed_to_contact_attempt", "gt", 30 * 60, 0.5),
    )
    assert tier_multiplier(tiers, converting) == 1.5
    assert tier_multiplier(tiers, slow) == 0.5
    both = AgentMetrics(leads=20, conversion_rate=0.3, speed_to_contact_attempt=timedelta(hours=1))
    assert tier_multiplier(tiers, both) == 0.75
    assert tier_multiplier(tiers, None) == 1.0
    assert tier_multiplier(tiers, AgentMetrics()) == 1.0  # no data triggers no tier
    now = utc(2024, 6, 5, 12)
    given = [utc(2024, 6, 5, 9)] * 4
    assert remaining(Caps(day=4), given, now, "UTC", multiplier=1.5) == 2  # cap 6
    assert remaining(Caps(day=4), given, now, "UTC", multiplier=0.5) == 0  # cap 2
    assert scaled_cap(3, 1.5) == 4  # rounded down: a scaled cap is never exceeded
    assert scaled_cap(10, 0.3) == 3  # 10 * 0.3 is 2.9999… in floating point


def test_bad_tiers_and_caps_are_refused() -> None:
    with pytest.raises(ValueError):
        PerformanceTier("happiness", "gte", 1, 2)
    with pytest.raises(ValueError):
        PerformanceTier("contact_rate", "eq", 1, 2)
    with pytest.raises(ValueError):
        Caps(day=-1)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "UTC"]),
    st.builds(
        Caps,
        st.none() | st.integers(0, 3),
        st.none() | st.integers(0, 6),
        st.none() | st.integers(0, 15),
        st.none() | st.integers(0, 40),
    ),
    st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=120),
    st.sampled_from([0.5, 1.0, 1.5]),
)
def test_no_cap_is_ever_exceeded(zone: str, caps: Caps, gaps: list[int], multiplier: float) -> None:
    """Giving a lead only while ``remaining`` > 0 keeps every window at or under its cap."""
    now = utc(2024, 3, 1)
    given: list[datetime] = []
    for gap in gaps:
        now += timedelta(seconds=gap)
        left = remaining(caps, given, now, zone, multiplier)
        if left is None or left > 0:
            given.append(now)
    for stamp in given:
        for period, cap in caps.items():
            start, end = window_start(period, stamp, zone), window_end(period, stamp, zone)
            inside = sum(start <= g < end for g in given)
            assert inside <= scaled_cap(cap, multiplier), (period, stamp)
    assert set(PERIODS) == {"hour", "day", "week", "month"}
