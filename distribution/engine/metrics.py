"""Per-agent performance metrics over a trailing window (seed 002's performance filters).

Input: the leads assigned to one agent, each with the activities logged on it. Activity
kinds are plain strings; the sets below say which kinds count as what (a meeting implies a
contact, a conversion implies qualification). Choices, so that the numbers cannot be gamed:

* Only leads assigned inside the window ``(now - window, now]`` count.
* Speeds are medians, robust to the odd lead that waited a weekend.
* A lead not yet attempted counts toward speed to contact attempt with the time it has
  waited so far: never calling is not faster than calling late.
* Speed to contact is measured over contacted leads (reaching someone depends on the lead).
* Rates are over all leads assigned in the window; None when there were none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from distribution.engine.schedule import to_utc
from distribution.engine.types import AgentMetrics

ATTEMPT_KINDS: frozenset[str] = frozenset(
    {"call", "call_attempt", "email", "sms", "contact", "contact_made", "meeting"}
)
CONTACT_KINDS: frozenset[str] = frozenset({"contact", "contact_made", "meeting"})
QUALIFIED_KINDS: frozenset[str] = frozenset({"qualified", "converted"})
CONVERTED_KINDS: frozenset[str] = frozenset({"converted"})


@dataclass(frozen=True, slots=True)
class Activity:
    """One activity an agent logged on a lead."""

    kind: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AssignedLead:
    """A lead as assigned to the agent, with the activities logged on it since."""

    assigned_at: datetime
    activities: tuple[Activity, ...] = ()


def _median(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def compute_metrics(
    leads: Iterable[AssignedLead], now: datetime, window: timedelta
) -> AgentMetrics:
    """Speed to contact attempt and to contact, contact, qualification and conversion rates.

    1. Keep the leads assigned within the window, and on each only the activities between
       its assignment and ``now``.
    2. Per lead: the first attempt and first contact time; whether it was qualified or
       converted.
    3. Aggregate: medians for speeds (unattempted leads count their wait so far), shares of
       leads for rates.
    """
    end = to_utc(now)
    start = end - window
    attempt_speeds: list[timedelta] = []
    contact_speeds: list[timedelta] = []
    total = contacted = qualified = converted = 0
    for lead in leads:
        assigned = to_utc(lead.assigned_at)
        if not start < assigned <= end:
            continue
        total += 1
        first_attempt: datetime | None = None
        first_contact: datetime | None = None
        kinds: set[str] = set()
        for activity in lead.activities:
            at = to_utc(activity.at)
            if not assigned <= at <= end:
                continue
            kinds.add(activity.kind)
            if activity.kind in ATTEMPT_KINDS and (first_attempt is None or at < first_attempt):
                first_attempt = at
            if activity.kind in CONTACT_KINDS and (first_contact is None or at < first_contact):
                first_contact = at
        attempt_speeds.append((first_attempt or end) - assigned)
        if first_contact is not None:
            contacted += 1
            contact_speeds.append(first_contact - assigned)
        qualified += bool(kinds & QUALIFIED_KINDS)
        converted += bool(kinds & CONVERTED_KINDS)
    if total == 0:
        return AgentMetrics()
    return AgentMetrics(
        leads=total,
        speed_to_contact_attempt=_median(attempt_speeds),
        speed_to_contact=_median(contact_speeds),
        contact_rate=contacted / total,
        qualification_rate=qualified / total,
        conversion_rate=converted / total,
    )
