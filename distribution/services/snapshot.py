"""Engine snapshots from the database, in a bounded number of queries whatever the sizes.

The services lock rows, then call these loaders; the engine gets frozen dataclasses only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

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
from distribution.models import Assignment, Automation, Pool, PoolMember, Rule, Schedule
from leads.models import OPEN_STATUSES, Activity, Lead

METRICS_WINDOW = timedelta(days=30)  # trailing window of the performance metrics


# --- schedules ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _country_holidays(country: str, year: int) -> frozenset[date]:
    import holidays as holidays_pkg

    try:
        return frozenset(holidays_pkg.country_holidays(country, years=year).keys())
    except (KeyError, NotImplementedError):  # a country the package does not know
        return frozenset()


def country_holidays(country: str, around: date) -> dict[date, str]:
    """The public holidays of COUNTRY from last year to two years ahead, with names."""
    import holidays as holidays_pkg

    try:
        table = holidays_pkg.country_holidays(
            country, years=range(around.year - 1, around.year + 3))
    except (KeyError, NotImplementedError):
        return {}
    return {d: str(n) for d, n in sorted(table.items())}


def schedule_snapshot(schedule: Schedule, today: date) -> ScheduleSnapshot:
    """The schedule with its prefetched intervals, holidays, and its country's holidays."""
    days = {h.date for h in schedule.holidays.all()}
    if schedule.holiday_country:
        for year in range(today.year - 1, today.year + 3):
            days |= _country_holidays(schedule.holiday_country, year)
    return ScheduleSnapshot(
        timezone=schedule.timezone,
        intervals=tuple(Interval(iv.weekday, iv.start, iv.end)
                        for iv in schedule.intervals.all()),
        holidays=frozenset(days),
    )


SCHEDULE_PREFETCH = ("intervals", "holidays")


def _prefetch(prefix: str) -> list[str]:
    return [f"{prefix}__{name}" for name in SCHEDULE_PREFETCH]


# --- agents and leads ---------------------------------------------------------------------


def agent_snapshot(user: User, now: datetime, *, open_leads: int = 0,
                   metrics: AgentMetrics | None = None) -> AgentSnapshot:
    """An agent as routing sees it; a user without agent profile is inactive."""
    profile: AgentProfile | None = getattr(user, "agent", None)
    if profile is None:
        return AgentSnapshot(id=user.pk, email=user.email or "", active=False)
    return AgentSnapshot(
        id=user.pk, email=user.email or "",
        active=bool(profile.active and user.is_active),
        available=profile.available,
        schedule=(schedule_snapshot(profile.schedule, now.date())
                  if profile.schedule_id and profile.schedule else None),
        last_turn_at=profile.last_turn_at,
        open_leads=open_leads, metrics=metrics,
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
    return tuple(Filter(str(f.get("field")), str(f.get("op")), f.get("value"))
                 for f in raw if isinstance(f, dict))


def caps_of(obj: Rule | PoolMember) -> Caps:
    return Caps(obj.cap_hour, obj.cap_day, obj.cap_week, obj.cap_month)


# --- rules --------------------------------------------------------------------------------


def rules_queryset() -> QuerySet[Rule]:
    return (Rule.objects.select_related("campaign", "schedule", "default_agent__agent__schedule")
            .prefetch_related("sources", "tiers", *_prefetch("schedule"),
                              *_prefetch("default_agent__agent__schedule"))
            .order_by("priority", "name"))


def rule_snapshot(rule: Rule, now: datetime) -> RuleSnapshot:
    """A rule with its prefetched sources, tiers, schedule and default agent."""
    schedule = schedule_snapshot(rule.schedule, now.date()) if rule.schedule else None
    return RuleSnapshot(
        id=rule.pk, name=rule.name, strategy=rule.strategy, priority=rule.priority,
        enabled=rule.enabled,
        sources=frozenset(s.slug for s in rule.sources.all()),
        campaign=rule.campaign.slug if rule.campaign else None,
        filters=filters_of(rule.filters),
        pool_id=rule.pool_id,
        claim_timeout=rule.claim_timeout,
        max_rounds=rule.max_rounds, batch_size=rule.batch_size,
        schedule=schedule,
        after_hours=rule.after_hours,
        default_agent=agent_snapshot(rule.default_agent, now) if rule.default_agent else None,
        caps=caps_of(rule),
        pull_allotment=rule.pull_allotment,
        tiers=tuple(PerformanceTier(t.metric, t.op, t.threshold, t.multiplier)
                    for t in rule.tiers.all()),
        catch_up=rule.catch_up,
        require_agent_hours=rule.require_agent_hours,
        # without a schedule, caps count calendar windows in the site's zone
        timezone=None if schedule else settings.TIME_ZONE,
    )


@dataclass
class RuleBook:
    """Every rule as engine snapshots plus the model rows, loaded once per operation."""

    snapshots: list[RuleSnapshot]
    models: dict[int, Rule]
    automations: list[Automation] = field(default_factory=list)

    def snapshot(self, rule_id: int | None) -> RuleSnapshot | None:
        return next((r for r in self.snapshots if r.id == rule_id), None)


def rulebook_load(now: datetime, *, automations: bool = False) -> RuleBook:
    """All rules (disabled ones too: the history lists them as tried) in ~6 queries."""
    rules = list(rules_queryset())
    book = RuleBook([rule_snapshot(r, now) for r in rules], {r.pk: r for r in rules})
    if automations:
        book.automations = list(
            Automation.objects.filter(enabled=True, trigger=Automation.Trigger.CREATED)
            .select_related("target_user", "target_rule").order_by("priority", "name"))
    return book


# --- pools --------------------------------------------------------------------------------


@dataclass
class PoolState:
    """A locked pool's members as snapshots; updated in memory as leads are given out."""

    pool_id: int
    timezone: str
    members: list[MemberSnapshot]
    index: dict[int, int]  # agent id → position in `members`
    rows: dict[int, PoolMember]  # member id → row

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
            counts = ReceivedCounts(*(counts.get(p) + 1 for p in PERIODS))
        self.members[i] = replace(member, agent=replace(member.agent, last_turn_at=stamp),
                                  received_counts=counts)

    def set_last_turn(self, agent_id: int, stamp: datetime) -> None:
        i = self.index.get(agent_id)
        if i is not None:
            m = self.members[i]
            self.members[i] = replace(m, agent=replace(m.agent, last_turn_at=stamp))


def received_counts(*, pool_id: int, agent_ids: Iterable[int], now: datetime,
                    tz: str) -> dict[int, ReceivedCounts]:
    """Leads each agent received through the pool in the current hour/day/week/month (1
    query): every lead given counts, whatever became of it."""
    starts = window_starts(now, tz)
    earliest = min(starts.values())
    windows = {p: Count("id", filter=Q(created_at__gte=starts[p])) for p in PERIODS}
    rows = (Assignment.objects
            .filter(pool_id=pool_id, agent_id__in=list(agent_ids), created_at__gte=earliest)
            .values("agent_id").annotate(**windows).values_list("agent_id", *PERIODS))
    return {row[0]: ReceivedCounts(*row[1:]) for row in rows}


def open_lead_counts(agent_ids: Sequence[int]) -> dict[int, int]:
    """Open leads each agent owns (load balancing), in one query."""
    rows = (Lead.objects.filter(owner_id__in=list(agent_ids), status__in=OPEN_STATUSES)
            .values("owner_id").annotate(n=Count("id")))
    return {r["owner_id"]: r["n"] for r in rows}


def agent_metrics(agent_ids: Sequence[int], now: datetime,
                  window: timedelta = METRICS_WINDOW) -> dict[int, AgentMetrics]:
    """Trailing-window performance per agent from assignments and activities (2 queries)."""
    given = list(Assignment.objects.filter(agent_id__in=list(agent_ids),
                                           created_at__gt=now - window, created_at__lte=now)
                 .values_list("agent_id", "lead_id", "created_at"))
    lead_ids = {lead_id for _, lead_id, _ in given}
    acts: dict[tuple[int, int | None], list[MetricActivity]] = {}
    for lead_id, agent_id, kind, at in (
            Activity.objects.filter(lead_id__in=lead_ids, created_at__lte=now)
            .values_list("lead_id", "agent_id", "kind", "created_at")):
        acts.setdefault((lead_id, agent_id), []).append(MetricActivity(kind, at))
    per_agent: dict[int, list[AssignedLead]] = {}
    for agent_id, lead_id, at in given:
        per_agent.setdefault(agent_id, []).append(
            AssignedLead(at, tuple(acts.get((lead_id, agent_id), ()))))
    return {a: compute_metrics(per_agent.get(a, []), now, window) for a in agent_ids}


def pool_state_load(*, pool_id: int, rule: RuleSnapshot, now: datetime,
                    with_open_leads: bool = False, with_metrics: bool = False) -> PoolState:
    """The pool's members with agents, schedules and window counts (3–7 queries)."""
    rows = list(PoolMember.objects.filter(pool_id=pool_id)
                .select_related("agent__agent__schedule")
                .prefetch_related(*_prefetch("agent__agent__schedule"))
                .order_by("position", "id"))
    agent_ids = [m.agent_id for m in rows]
    tz = rule.cap_timezone
    counts = received_counts(pool_id=pool_id, agent_ids=agent_ids, now=now, tz=tz)
    open_leads = open_lead_counts(agent_ids) if with_open_leads and agent_ids else {}
    metrics = agent_metrics(agent_ids, now) if with_metrics and agent_ids else {}
    members = [
        MemberSnapshot(
            id=m.pk,
            agent=agent_snapshot(m.agent, now, open_leads=open_leads.get(m.agent_id, 0),
                                 metrics=metrics.get(m.agent_id)),
            position=m.position, weight=float(m.weight), active=m.active,
            caps=caps_of(m), filters=filters_of(m.filters),
            received_counts=counts.get(m.agent_id, ReceivedCounts()),
        )
        for m in rows
    ]
    return PoolState(pool_id=pool_id, timezone=tz, members=members,
                     index={m.agent.id: i for i, m in enumerate(members)},
                     rows={m.pk: m for m in rows})


def pools_lock(pool_ids: Iterable[int]) -> None:
    """Lock pool rows in id order (no deadlocks): pickers of one pool take turns, so
    round robin stays fair and caps exact across workers."""
    ids = sorted(set(pool_ids))
    if ids:
        list(Pool.objects.select_for_update().filter(pk__in=ids).order_by("pk")
             .values_list("pk", flat=True))


def directory_load(leads: Iterable[LeadSnapshot], now: datetime) -> list[AgentSnapshot]:
    """The agents that leads' assign_to_email / assign_to_user_id name (1 query)."""
    emails = {e for lead in leads if (e := lead.assign_to_email)}
    ids = {i for lead in leads if (i := lead.assign_to_user_id) is not None}
    if not emails and not ids:
        return []
    match = Q(pk__in=ids)
    for e in emails:
        match |= Q(email__iexact=e)
    users = User.objects.filter(match).select_related("agent__schedule").prefetch_related(
        *_prefetch("agent__schedule"))
    return [agent_snapshot(u, now) for u in users]


def memberships_load(*, agent_id: int, rules: Sequence[RuleSnapshot], now: datetime
                     ) -> dict[int, MemberSnapshot]:
    """One agent's memberships of the rules' pools, with window counts: pool id → member
    (1 query for the rows, 1 per pool for the counts)."""
    pool_ids = {r.pool_id for r in rules if r.pool_id is not None}
    if not pool_ids:
        return {}
    rows = list(PoolMember.objects.filter(agent_id=agent_id, pool_id__in=pool_ids)
                .select_related("agent__agent__schedule")
                .prefetch_related(*_prefetch("agent__agent__schedule")))
    tz_of = {r.pool_id: r.cap_timezone for r in rules if r.pool_id is not None}
    metrics = (agent_metrics([agent_id], now).get(agent_id)
               if rows and any(r.tiers for r in rules) else None)
    out: dict[int, MemberSnapshot] = {}
    for m in rows:
        counts = received_counts(pool_id=m.pool_id, agent_ids=[agent_id], now=now,
                                 tz=tz_of[m.pool_id])
        out[m.pool_id] = MemberSnapshot(
            id=m.pk, agent=agent_snapshot(m.agent, now, metrics=metrics), position=m.position,
            weight=float(m.weight), active=m.active, caps=caps_of(m),
            filters=filters_of(m.filters),
            received_counts=counts.get(agent_id, ReceivedCounts()))
    return out
