"""Engine snapshots from the database, in a bounded number of queries whatever the sizes.

The services lock rows, then call these loaders; the engine gets frozen dataclasses only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from accounts.models import AgentProfile, User
from distribution.engine.caps import window_starts
from distribution.engine.metrics import Activity as MetricActivity
from distribution.engine.metrics import AssignedLead, compute_metrics
from distribution.engine.types import (
    PERIODS,
    AgentMetrics,
    AgentSnapshot,
    Caps,
    Filter,
    Interval,
    LeadSnapshot,
    MemberSnapshot,
    PerformanceTier,
    ReceivedCounts,
    RuleSnapshot,
    ScheduleSnapshot,
)
from distribution.loaders.holidays import year_holidays
from distribution.models import Assignment, Offer, PoolMember, Rule, Schedule
from leads.models import OPEN_STATUSES, Activity, Lead

METRICS_WINDOW = timedelta(days=30)  # trailing window of the performance metrics


def schedule_snapshot(schedule: Schedule, today: date) -> ScheduleSnapshot:
    """The schedule with its prefetched intervals, holidays, and its country's holidays."""
    days = {h.date for h in schedule.holidays.all()}
    if schedule.holiday_country:
        for year in range(today.year - 1, today.year + 3):
            days |= year_holidays(schedule.holiday_country, year).keys()
    return ScheduleSnapshot(
        timezone=schedule.timezone,
        intervals=tuple(Interval(iv.weekday, iv.start, iv.end) for iv in schedule.intervals.all()),
        holidays=frozenset(days),
    )


SCHEDULE_PREFETCH = ("intervals", "holidays")


def _prefetch(prefix: str) -> list[str]:
    return [f"{prefix}__{name}" for name in SCHEDULE_PREFETCH]


# --- agents and leads ---------------------------------------------------------------------


def agent_snapshot(
    user: User,
    now: datetime,
    *,
    open_leads: int = 0,
    metrics: AgentMetrics | None = None,
    schedules: Mapping[int, ScheduleSnapshot] | None = None,
) -> AgentSnapshot:
    """An agent as routing sees it; a user without agent profile is inactive. With
    SCHEDULES (the cached configuration) the agent's schedule is looked up there instead of
    being built from its prefetched rows."""
    profile: AgentProfile | None = getattr(user, "agent", None)
    if profile is None:
        return AgentSnapshot(id=user.pk, email=user.email or "", active=False)
    schedule: ScheduleSnapshot | None = None
    if profile.schedule_id:
        schedule = schedules.get(profile.schedule_id) if schedules is not None else None
        if schedule is None and profile.schedule:  # not in the mapping: built here
            schedule = schedule_snapshot(profile.schedule, now.date())
    return AgentSnapshot(
        id=user.pk,
        email=user.email or "",
        active=bool(profile.active and user.is_active),
        available=profile.available,
        schedule=schedule,
        last_turn_at=profile.last_turn_at,
        open_leads=open_leads,
        metrics=metrics,
    )


def lead_snapshot(lead: Lead) -> LeadSnapshot:
    """A lead's columns, attributes, source and campaign slugs (source/campaign joined)."""
    return LeadSnapshot(
        id=lead.pk,
        source=lead.source.slug if lead.source_id and lead.source else None,
        campaign=lead.campaign.slug if lead.campaign_id and lead.campaign else None,
        created_at=lead.created_at,
        fields=lead.field_values(),
        attributes=lead.attributes if isinstance(lead.attributes, dict) else {},
    )


def filters_of(raw: object) -> tuple[Filter, ...]:
    """Stored `[{field, op, value}]` as engine filters (validated when saved)."""
    if not isinstance(raw, list):
        return ()
    return tuple(
        Filter(str(f.get("field")), str(f.get("op")), f.get("value"))
        for f in raw
        if isinstance(f, dict)
    )


def caps_of(obj: Rule | PoolMember) -> Caps:
    return Caps(obj.cap_hour, obj.cap_day, obj.cap_week, obj.cap_month)


# --- rules --------------------------------------------------------------------------------


def rules_queryset() -> QuerySet[Rule]:
    """Every rule with what its snapshot needs."""
    return (
        Rule.objects.select_related("campaign", "schedule")
        .prefetch_related("sources", "tiers", *_prefetch("schedule"))
        .order_by("priority", "name")
    )


def rule_snapshot(
    rule: Rule,
    now: datetime,
    *,
    schedules: Mapping[int, ScheduleSnapshot],
    default_agent: AgentSnapshot | None = None,
) -> RuleSnapshot:
    """A rule with its prefetched sources and tiers, its schedule and default agent."""
    schedule = schedules.get(rule.schedule_id) if rule.schedule_id else None
    return RuleSnapshot(
        id=rule.pk,
        name=rule.name,
        strategy=rule.strategy,
        priority=rule.priority,
        enabled=rule.enabled,
        sources=frozenset(s.slug for s in rule.sources.all()),
        campaign=rule.campaign.slug if rule.campaign else None,
        filters=filters_of(rule.filters),
        pool_id=rule.pool_id,
        claim_timeout=rule.claim_timeout,
        max_rounds=rule.max_rounds,
        batch_size=rule.batch_size,
        schedule=schedule,
        after_hours=rule.after_hours,
        default_agent=default_agent,
        caps=caps_of(rule),
        pull_allotment=rule.pull_allotment,
        tiers=tuple(
            PerformanceTier(t.metric, t.op, t.threshold, t.multiplier) for t in rule.tiers.all()
        ),
        catch_up=rule.catch_up,
        require_agent_hours=rule.require_agent_hours,
        # without a schedule, caps count calendar windows in the site's zone
        timezone=None if schedule else settings.TIME_ZONE,
    )


def schedules_fill(
    schedules: dict[int, ScheduleSnapshot], ids: Iterable[int | None], now: datetime
) -> None:
    """Add the schedules of IDS missing from SCHEDULES (none missing: no query, else 3)."""
    missing = {i for i in ids if i is not None and i not in schedules}
    if missing:
        today = now.date()
        for row in Schedule.objects.filter(pk__in=missing).prefetch_related(*SCHEDULE_PREFETCH):
            schedules[row.pk] = schedule_snapshot(row, today)


# --- pools --------------------------------------------------------------------------------


@dataclass
class PoolState:
    """A locked pool's members as snapshots; updated in memory as leads are given out."""

    pool_id: int
    timezone: str
    members: list[MemberSnapshot]
    index: dict[int, int]  # agent id → position in `members`
    contacts: dict[int, tuple[str, str]] = field(default_factory=dict)  # agent → e-mail, phone

    def member_of(self, agent_id: int) -> MemberSnapshot | None:
        i = self.index.get(agent_id)
        return self.members[i] if i is not None else None

    def record_turn(self, agent_id: int, stamp: datetime, *, received: bool = True) -> None:
        """Another lead given: the agent's last turn moves and every window count grows."""
        i = self.index.get(agent_id)
        if i is None:
            return
        member = self.members[i]
        counts = member.received_counts or ReceivedCounts()
        if received:
            counts = ReceivedCounts(
                counts.hour + 1, counts.day + 1, counts.week + 1, counts.month + 1
            )
        self.members[i] = _member_after_turn(member, stamp, counts)


def _member_after_turn(
    member: MemberSnapshot, stamp: datetime, counts: ReceivedCounts
) -> MemberSnapshot:
    """`replace(member, agent=replace(agent, last_turn_at=STAMP), received_counts=COUNTS)`,
    built directly (once per lead given, and replace() inspects the fields each time)."""
    a = member.agent
    agent = AgentSnapshot(
        a.id, a.email, a.active, a.available, a.schedule, stamp, a.open_leads, a.metrics
    )
    m = member
    return MemberSnapshot(
        m.id, agent, m.position, m.weight, m.active, m.caps, m.filters, m.received_at, counts
    )


# _member_after_turn copies every field by position: a field added to these snapshots must
# be added there too (importing this module fails until it is)
_COPIED_FIELDS = {
    AgentSnapshot: (
        "id", "email", "active", "available", "schedule", "last_turn_at", "open_leads", "metrics"
    ),
    MemberSnapshot: (
        "id", "agent", "position", "weight", "active", "caps", "filters", "received_at",
        "received_counts",
    ),
}  # fmt: skip
for _cls, _names in _COPIED_FIELDS.items():
    if tuple(f.name for f in fields(_cls)) != _names:
        raise TypeError(f"{_cls.__name__} fields changed: update _member_after_turn")


def received_counts(
    *, pool_id: int, agent_ids: Iterable[int], now: datetime, tz: str
) -> dict[int, ReceivedCounts]:
    """Leads each agent received through the pool in the current hour/day/week/month (1
    query): every lead given counts, whatever became of it."""
    starts = window_starts(now, tz)
    earliest = min(starts.values())
    windows = {p: Count("id", filter=Q(created_at__gte=starts[p])) for p in PERIODS}
    rows = (
        Assignment.objects.filter(
            pool_id=pool_id, agent_id__in=list(agent_ids), created_at__gte=earliest
        )
        .values("agent_id")
        .annotate(**windows)
        .values_list("agent_id", *PERIODS)
    )
    return {row[0]: ReceivedCounts(*row[1:]) for row in rows}


def open_lead_counts(agent_ids: Sequence[int]) -> dict[int, int]:
    """Open leads each agent owns (load balancing), in one query."""
    rows = (
        Lead.objects.filter(owner_id__in=list(agent_ids), status__in=OPEN_STATUSES)
        .values("owner_id")
        .annotate(n=Count("id"))
    )
    return {r["owner_id"]: r["n"] for r in rows}


def agent_metrics(
    agent_ids: Sequence[int], now: datetime, window: timedelta = METRICS_WINDOW
) -> dict[int, AgentMetrics]:
    """Trailing-window performance per agent from assignments and activities (2 queries)."""
    given = list(
        Assignment.objects.filter(
            agent_id__in=list(agent_ids), created_at__gt=now - window, created_at__lte=now
        ).values_list("agent_id", "lead_id", "created_at")
    )
    lead_ids = {lead_id for _, lead_id, _ in given}
    acts: dict[tuple[int, int | None], list[MetricActivity]] = {}
    for lead_id, agent_id, kind, at in Activity.objects.filter(
        lead_id__in=lead_ids, created_at__lte=now
    ).values_list("lead_id", "agent_id", "kind", "created_at"):
        acts.setdefault((lead_id, agent_id), []).append(MetricActivity(kind, at))
    per_agent: dict[int, list[AssignedLead]] = {}
    for agent_id, lead_id, at in given:
        per_agent.setdefault(agent_id, []).append(
            AssignedLead(at, tuple(acts.get((lead_id, agent_id), ())))
        )
    return {a: compute_metrics(per_agent.get(a, []), now, window) for a in agent_ids}


def pool_state_load(
    *,
    pool_id: int,
    timezone: str,
    now: datetime,
    with_open_leads: bool = False,
    with_metrics: bool = False,
    schedules: dict[int, ScheduleSnapshot] | None = None,
) -> PoolState:
    """The pool's members with agents, schedules and window counts (caps counted in
    TIMEZONE), with the ORM.

    With SCHEDULES (the cached configuration's): the members with their agents, then their
    window counts and open leads (3 queries, +2 for metrics); without, schedules are
    prefetched too (4–7 queries). On PostgreSQL the Router loads its pools with
    `distribution.db.pools.pools_load` instead (one fixed query).
    """
    members_qs = PoolMember.objects.filter(pool_id=pool_id).order_by("position", "id")
    tz = timezone
    if schedules is None:
        rows = list(
            members_qs.select_related("agent__agent__schedule").prefetch_related(
                *_prefetch("agent__agent__schedule")
            )
        )
    else:
        rows = list(members_qs.select_related("agent__agent"))
        # the agents' schedules join the cached configuration's
        schedules_fill(
            schedules,
            (getattr(getattr(m.agent, "agent", None), "schedule_id", None) for m in rows),
            now,
        )
    agent_ids = [m.agent_id for m in rows]
    counts = received_counts(pool_id=pool_id, agent_ids=agent_ids, now=now, tz=tz)
    open_leads = open_lead_counts(agent_ids) if with_open_leads and agent_ids else {}
    metrics = agent_metrics(agent_ids, now) if with_metrics and agent_ids else {}
    members = [
        MemberSnapshot(
            id=m.pk,
            agent=agent_snapshot(
                m.agent,
                now,
                open_leads=open_leads.get(m.agent_id, 0),
                metrics=metrics.get(m.agent_id),
                schedules=schedules,
            ),
            position=m.position,
            weight=float(m.weight),
            active=m.active,
            caps=caps_of(m),
            filters=filters_of(m.filters),
            received_counts=counts.get(m.agent_id, ReceivedCounts()),
        )
        for m in rows
    ]
    return PoolState(
        pool_id=pool_id,
        timezone=tz,
        members=members,
        index={m.agent.id: i for i, m in enumerate(members)},
        contacts={m.agent_id: (m.agent.email or "", profile_phone(m.agent)) for m in rows},
    )


def profile_phone(user: User) -> str:
    profile: AgentProfile | None = getattr(user, "agent", None)
    return profile.phone if profile is not None else ""


@dataclass(frozen=True)
class PoolWanted:
    """A pool to load for rules counting caps in TIMEZONE, with what its strategies need."""

    pool_id: int
    timezone: str
    with_open_leads: bool = False
    with_metrics: bool = False


def directory_load(leads: Iterable[LeadSnapshot], now: datetime) -> list[AgentSnapshot]:
    """The agents that leads' assign_to_email / assign_to_user_id name (1 query)."""
    emails = {e for lead in leads if (e := lead.assign_to_email)}
    ids = {i for lead in leads if (i := lead.assign_to_user_id) is not None}
    if not emails and not ids:
        return []
    match = Q(pk__in=ids)
    for e in emails:
        match |= Q(email__iexact=e)
    users = (
        User.objects.filter(match)
        .select_related("agent__schedule")
        .prefetch_related(*_prefetch("agent__schedule"))
    )
    return [agent_snapshot(u, now) for u in users]


def memberships_load(
    *, agent_id: int, rules: Sequence[RuleSnapshot], now: datetime
) -> dict[int, MemberSnapshot]:
    """One agent's memberships of the rules' pools, with window counts: pool id → member
    (1 query for the rows, 1 per pool for the counts)."""
    pool_ids = {r.pool_id for r in rules if r.pool_id is not None}
    if not pool_ids:
        return {}
    rows = list(
        PoolMember.objects.filter(agent_id=agent_id, pool_id__in=pool_ids)
        .select_related("agent__agent__schedule")
        .prefetch_related(*_prefetch("agent__agent__schedule"))
    )
    tz_of = {r.pool_id: r.cap_timezone for r in rules if r.pool_id is not None}
    metrics = (
        agent_metrics([agent_id], now).get(agent_id)
        if rows and any(r.tiers for r in rules)
        else None
    )
    out: dict[int, MemberSnapshot] = {}
    for m in rows:
        counts = received_counts(
            pool_id=m.pool_id, agent_ids=[agent_id], now=now, tz=tz_of[m.pool_id]
        )
        out[m.pool_id] = MemberSnapshot(
            id=m.pk,
            agent=agent_snapshot(m.agent, now, metrics=metrics),
            position=m.position,
            weight=float(m.weight),
            active=m.active,
            caps=caps_of(m),
            filters=filters_of(m.filters),
            received_counts=counts.get(agent_id, ReceivedCounts()),
        )
    return out


# what a routed lead reads with its row (the engine reads source and campaign slugs; a
# sticky-owner rule its duplicate-of lead)
LEAD_RELATED = ("source", "campaign", "duplicate_of")


def locked_leads(
    ids: Sequence[int] | None = None,
    *,
    skip_locked: bool = False,
    limit: int | None = None,
    **filters: Any,
) -> list[Lead]:
    """Leads (of the IDS, when given) matching FILTERS, oldest first, locked (`FOR UPDATE`
    of the lead rows only; SKIP_LOCKED passes over those another worker holds), with what
    routing reads (LEAD_RELATED)."""
    qs = (
        Lead.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related(*LEAD_RELATED)
        .filter(**filters)
    )
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    qs = qs.order_by("created_at", "id")
    return list(qs[:limit] if limit else qs)


def offered_members(lead_ids: Sequence[int]) -> dict[int, tuple[frozenset[int], int]]:
    """Per lead: every pool member offered it so far, and the last round (1 query)."""
    out: dict[int, tuple[set[int], int]] = {}
    for lead_id, member_id, round_no in Offer.objects.filter(
        lead_id__in=list(lead_ids)
    ).values_list("lead_id", "member_id", "round"):
        members, last = out.setdefault(lead_id, (set(), 0))
        if member_id is not None:
            members.add(member_id)
        out[lead_id] = (members, max(last, round_no))
    return {k: (frozenset(m), r) for k, (m, r) in out.items()}
