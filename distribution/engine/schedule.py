"""Working-hours arithmetic: is a schedule open, when does it open, and open-time timers.

Semantics (exact across DST changes; all results are UTC-aware datetimes):

* Intervals are local wall-clock times of the schedule's zone. A local time that does not
  exist (spring forward) maps to the moment of the change; a local time that occurs twice
  (fall back) opens at its first occurrence and closes at its last, so an interval covers
  every moment whose wall clock lies inside it.
* A holiday closes the whole local day, including the after-midnight part of a night shift
  that began the day before.
* ``None`` as schedule means always open.
* A schedule without any interval is never open: ``next_open``, ``add_open_time`` and
  ``next_close`` raise ``ValueError`` for it (check ``has_open_time`` first); ``is_open``
  simply answers False.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from distribution.engine.types import Interval, ScheduleSnapshot

_MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)

Segment = tuple[datetime, datetime]


def to_utc(t: datetime) -> datetime:
    """``t`` as a UTC datetime; naive datetimes are refused (time must carry its zone)."""
    if t.tzinfo is UTC:  # already UTC (Django's clock and columns): astimezone would copy
        return t
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: the engine needs tz-aware datetimes")
    return t.astimezone(UTC)


def local_to_utc(naive: datetime, tz: tzinfo, *, last: bool = False) -> datetime:
    """The instant a local wall-clock time names.

    1. A normal local time has one instant.
    2. An ambiguous one (fall back) has two: the first, or the last when ``last`` is set.
    3. A nonexistent one (spring forward) maps to the moment of the change — the first
       instant whose wall clock is at or after it — found by bisecting the gap's seconds.
    """
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first < second:
        return second if last else first
    # In a gap fold=0 uses the offset before the change (an instant after it) and fold=1 the
    # offset after (an instant before it); the change lies in (second, first].
    after = first.astimezone(tz).utcoffset()
    lo, hi = int(second.timestamp()), int(first.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def parse_clock(text: str) -> time:
    """Parse ``"HH:MM"`` into a time; ``"24:00"`` becomes ``time(0)``, the end-of-day marker."""
    hours, _, minutes = text.strip().partition(":")
    h, m = int(hours), int(minutes or 0)
    if (h, m) == (24, 0):
        return _MIDNIGHT
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"not a clock time: {text!r}")
    return time(h, m)


def has_open_time(schedule: ScheduleSnapshot | None) -> bool:
    """True unless the schedule has no interval at all (None = always open)."""
    return schedule is None or bool(schedule.intervals)


def is_holiday(schedule: ScheduleSnapshot | None, t: datetime) -> bool:
    """True when ``t`` falls on one of the schedule's holidays (a local date)."""
    if schedule is None or not schedule.holidays:
        return False
    return to_utc(t).astimezone(schedule.tz).date() in schedule.holidays


def _by_weekday(schedule: ScheduleSnapshot) -> list[list[Interval]]:
    days: list[list[Interval]] = [[] for _ in range(7)]
    for interval in schedule.intervals:
        days[interval.weekday].append(interval)
    return days


def _day_segments(
    schedule: ScheduleSnapshot, by_day: list[list[Interval]], day: date
) -> list[Segment]:
    """The open UTC segments of one local date, sorted and merged.

    1. A holiday has none.
    2. Each interval of the weekday contributes [start, end), cut at midnight.
    3. A night shift of the previous weekday contributes its after-midnight part.
    4. Endpoints become instants (see ``local_to_utc``); empty segments (inside a DST gap)
       are dropped, overlapping ones merged.
    """
    if day in schedule.holidays:
        return []
    tz = schedule.tz
    midnight = datetime.combine(day, _MIDNIGHT)
    next_midnight = midnight + _ONE_DAY  # naive arithmetic: wall-clock dates
    local: list[tuple[datetime, datetime]] = []
    for interval in by_day[day.weekday()]:
        start = datetime.combine(day, interval.start)
        end = (
            datetime.combine(day, interval.end) if interval.end > interval.start else next_midnight
        )
        local.append((start, end))
    for interval in by_day[(day.weekday() - 1) % 7]:
        if interval.end <= interval.start and interval.end != _MIDNIGHT:
            local.append((midnight, datetime.combine(day, interval.end)))
    segments = sorted(
        (a, b)
        for a, b in ((local_to_utc(s, tz), local_to_utc(e, tz, last=True)) for s, e in local)
        if a < b
    )
    merged: list[Segment] = []
    for a, b in segments:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _segments(schedule: ScheduleSnapshot, first_day: date, days: int) -> Iterator[Segment]:
    """Open segments of ``days`` local dates from ``first_day``, in time order.

    Segments of consecutive days may touch or (around an ambiguous midnight) overlap;
    callers walk them with a cursor rather than assume they are disjoint.
    """
    by_day = _by_weekday(schedule)
    for offset in range(days):
        yield from _day_segments(schedule, by_day, first_day + timedelta(days=offset))


def _search_days(schedule: ScheduleSnapshot, start_day: date) -> int:
    """How many days to walk before concluding that nothing more will change.

    Every week without a holiday contains every weekday's open time, so a search that meets
    no opening within (holidays + 2) weeks, or beyond the last holiday, never will.
    """
    base = 7 * (len(schedule.holidays) + 2) + 2
    if schedule.holidays:
        base = max(base, (max(schedule.holidays) - start_day).days + 9)
    return base


def _require_open_time(schedule: ScheduleSnapshot) -> None:
    if not schedule.intervals:
        raise ValueError(f"schedule in {schedule.timezone} has no open interval: it never opens")


def _start_day(schedule: ScheduleSnapshot, t_utc: datetime) -> date:
    # The previous day too: its night shift (or an ambiguous midnight) can reach past t's date.
    return t_utc.astimezone(schedule.tz).date() - _ONE_DAY


def is_open(schedule: ScheduleSnapshot | None, t: datetime) -> bool:
    """True when ``t`` lies inside an open interval (None = always open)."""
    t_utc = to_utc(t)
    if schedule is None:
        return True
    if not schedule.intervals:
        return False
    return any(a <= t_utc < b for a, b in _segments(schedule, _start_day(schedule, t_utc), 3))


def next_open(schedule: ScheduleSnapshot | None, t: datetime) -> datetime:
    """The first open instant at or after ``t``: ``t`` itself when open."""
    t_utc = to_utc(t)
    if schedule is None:
        return t
    _require_open_time(schedule)
    start_day = _start_day(schedule, t_utc)
    for a, b in _segments(schedule, start_day, _search_days(schedule, start_day)):
        if b > t_utc:
            return t if a <= t_utc else a
    raise ValueError(f"schedule in {schedule.timezone} never opens after {t.isoformat()}")


def next_close(schedule: ScheduleSnapshot | None, t: datetime) -> datetime | None:
    """End of the open stretch containing ``t`` (or of the next one when closed).

    None when it never closes: no schedule, or open around the clock with no holiday ahead.
    """
    if schedule is None:
        return None
    cursor = to_utc(next_open(schedule, t))
    start_day = _start_day(schedule, cursor)
    for a, b in _segments(schedule, start_day, _search_days(schedule, start_day)):
        if b <= cursor:
            continue
        if a > cursor:
            return cursor
        cursor = b
    return None


def add_open_time(schedule: ScheduleSnapshot | None, t: datetime, duration: timedelta) -> datetime:
    """The instant when ``duration`` of open time has passed since ``t``.

    Closed time does not count: a timer started while closed runs from the next opening.
    1. Zero duration gives ``t``; a negative one is refused.
    2. Walk the open segments from ``t`` with a cursor, spending the remaining duration on
       each; the instant where it runs out is the answer (it may be a closing instant).
    Composes exactly: ``add(t, a + b) == add(add(t, a), b)``.
    """
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    t_utc = to_utc(t)
    if duration == timedelta(0):
        return t
    if schedule is None:
        return t_utc + duration
    _require_open_time(schedule)
    remaining = duration
    cursor = t_utc
    day = _start_day(schedule, t_utc)
    by_day = _by_weekday(schedule)
    limit = _search_days(schedule, day)
    idle_days = 0  # days walked without any open time; bounded as a safety net
    while idle_days <= limit:
        idle_days += 1
        for a, b in _day_segments(schedule, by_day, day):
            if b <= cursor:
                continue
            start = max(a, cursor)
            available = b - start
            if remaining <= available:
                return start + remaining
            remaining -= available
            cursor = b
            idle_days = 0
        day += _ONE_DAY
    raise ValueError(f"schedule in {schedule.timezone} never opens after {t.isoformat()}")
