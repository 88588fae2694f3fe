"""Cap windows and remaining quota.

A cap counts every lead given to a member inside the current calendar window — hour, day,
week (starting Monday) or month — in the rule's time zone. Losing or handing back a lead
gives no quota back. Performance tiers scale the caps; a scaled cap is rounded down so that
it is never exceeded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from distribution.engine.schedule import local_to_utc, to_utc
from distribution.engine.types import (
    PERIODS,
    AgentMetrics,
    Caps,
    PerformanceTier,
    ReceivedCounts,
)


def _zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def window_start(period: str, now: datetime, tz: str | tzinfo) -> datetime:
    """Start (UTC) of the calendar hour/day/week/month containing ``now`` in zone ``tz``."""
    zone = _zone(tz)
    local = to_utc(now).astimezone(zone)
    if period == "hour":
        # replace() keeps fold, so the repeated hour of a fall-back night is its own window.
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    naive = local.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        pass
    elif period == "week":
        naive -= timedelta(days=naive.weekday())
    elif period == "month":
        naive = naive.replace(day=1)
    else:
        raise ValueError(f"unknown cap period {period!r}")
    return local_to_utc(naive, zone)


def window_end(period: str, now: datetime, tz: str | tzinfo) -> datetime:
    """End (UTC, exclusive) of the window containing ``now``: when the cap resets."""
    zone = _zone(tz)
    start = window_start(period, now, zone)
    if period == "hour":
        return start + timedelta(hours=1)
    naive = start.astimezone(zone).replace(tzinfo=None)
    if period == "day":
        naive += timedelta(days=1)
    elif period == "week":
        naive += timedelta(days=7)
    else:
        # Day 28 plus four days is always in the next month.
        naive = (naive.replace(day=28) + timedelta(days=4)).replace(day=1)
    return local_to_utc(naive.replace(hour=0, minute=0), zone)


def window_starts(now: datetime, tz: str | tzinfo) -> dict[str, datetime]:
    """``window_start`` of every period, computed once for a whole pool."""
    zone = _zone(tz)
    return {period: window_start(period, now, zone) for period in PERIODS}


def count_received(
    timestamps: Iterable[datetime], starts: Mapping[str, datetime]
) -> ReceivedCounts:
    """Count the timestamps at or after each period's window start."""
    hour, day, week, month = (starts[p] for p in PERIODS)
    counts = [0, 0, 0, 0]
    for stamp in timestamps:
        # One conversion, then four cheap UTC comparisons (Django already hands out UTC).
        u = stamp if stamp.tzinfo is UTC else to_utc(stamp)
        if u >= month:
            counts[3] += 1
        if u >= week:
            counts[2] += 1
        if u >= day:
            counts[1] += 1
            if u >= hour:
                counts[0] += 1
    return ReceivedCounts(*counts)


def scaled_cap(cap: int, multiplier: float) -> int:
    """A cap scaled by a performance multiplier, rounded down (the epsilon absorbs 0.1*3)."""
    return max(0, math.floor(cap * multiplier + 1e-9))


def remaining_from_counts(
    caps: Caps, counts: ReceivedCounts, multiplier: float = 1.0
) -> int | None:
    """Leads still allowed under every set cap (never negative); None when nothing is capped."""
    left = [scaled_cap(cap, multiplier) - counts.get(period) for period, cap in caps.items()]
    return max(0, min(left)) if left else None


def remaining(
    caps: Caps,
    given_timestamps: Iterable[datetime],
    now: datetime,
    tz: str | tzinfo,
    multiplier: float = 1.0,
) -> int | None:
    """Leads still allowed now under ``caps``, given when the earlier leads were given."""
    if not caps.items():
        return None
    counts = count_received(given_timestamps, window_starts(now, tz))
    return remaining_from_counts(caps, counts, multiplier)


def binding_cap(
    caps: Caps, counts: ReceivedCounts, multiplier: float = 1.0
) -> tuple[str, int, int] | None:
    """The first exhausted cap as ``(period, scaled cap, received)``, or None."""
    for period, cap in caps.items():
        limit = scaled_cap(cap, multiplier)
        if counts.get(period) >= limit:
            return period, limit, counts.get(period)
    return None


def _passes(value: float, op: str, threshold: float) -> bool:
    if op == "gt":
        return value > threshold
    if op == "gte":
        return value >= threshold
    if op == "lt":
        return value < threshold
    return value <= threshold  # "lte"; the operator was validated by PerformanceTier


def tier_multiplier(tiers: Sequence[PerformanceTier], metrics: AgentMetrics | None) -> float:
    """Product of the multipliers of every tier whose threshold the agent's metrics pass.

    A metric without data (no leads in the window) triggers no tier.
    """
    multiplier = 1.0
    if metrics is None:
        return multiplier
    for tier in tiers:
        value = metrics.value(tier.metric)
        if value is not None and _passes(value, tier.op, tier.threshold):
            multiplier *= tier.multiplier
    return multiplier
