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
    PoolUsage,
    ReceivedCounts,
    RuleSnapshot,
    ScheduleSnapshot,
)
from distribution.loaders.holidays import year_holidays
from distribution.models import (
    METRICS_WINDOW,
    AfterHours,
    Assignment,
    Offer,
    Organisation,
    Pool,
    PoolMember,
    Rule,
    Schedule,
    Strategy,
)
from leads.models import OPEN_STATUSES, Activity, Lead


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


def lead_snapshot(lead: Lead, extras: Mapping[str, object] | None = None) -> LeadSnapshot:
    """A lead's columns, attributes, source and campaign slugs (source/campaign joined);
    EXTRAS: the filter fields read beside the row (``lead_extras_load``)."""
    values = lead.field_values()
    if extras:
        values.update(extras)
    return LeadSnapshot(
        id=lead.pk,
        source=lead.source.slug if lead.source_id and lead.source else None,
        campaign=lead.campaign.slug if lead.campaign_id and lead.campaign else None,
        created_at=lead.created_at,
        fields=values,
        attributes=lead.attributes if isinstance(lead.attributes, dict) else {},
    )


# Filter fields that are not columns of the lead row: `owner` (the owner's e-mail, None
# when unassigned — seed 002's "[User] equal to (Unassigned)" is `owner is_empty`) and
# `action_count` (the lead's activities — "[Action Count] equal to 0"). They are read only
# when a filter names them, for a whole batch in one query each.
EXTRA_FIELDS: frozenset[str] = frozenset({"owner", "action_count"})


def extra_fields_of(*filter_lists: Iterable[Filter]) -> frozenset[str]:
    """The extra fields (EXTRA_FIELDS) that FILTER_LISTS name."""
    return frozenset(f.field for flts in filter_lists for f in flts if f.field in EXTRA_FIELDS)


def lead_extras_load(leads: Sequence[Lead], wanted: Iterable[str]) -> dict[int, dict[str, object]]:
    """The WANTED extra filter fields of LEADS: lead id → values (at most 1 query each;
    none for `owner` when no lead has one)."""
    wanted = set(wanted) & EXTRA_FIELDS
    out: dict[int, dict[str, object]] = {lead.pk: {} for lead in leads}
    if not wanted or not leads:
        return out
    if "owner" in wanted:
        owner_ids = {lead.owner_id for lead in leads if lead.owner_id is not None}
        emails = (
            dict(User.objects.filter(pk__in=owner_ids).values_list("pk", "email"))
            if owner_ids
            else {}
        )
        for lead in leads:
            owner = emails.get(lead.owner_id) if lead.owner_id is not None else None
            out[lead.pk]["owner"] = (owner or str(lead.owner_id)) if lead.owner_id else None
    if "action_count" in wanted:
        counts = dict(
            Activity.objects.filter(lead_id__in=[lead.pk for lead in leads])
            .values("lead_id")
            .annotate(n=Count("id"))
            .values_list("lead_id", "n")
        )
        for lead in leads:
            out[lead.pk]["action_count"] = counts.get(lead.pk, 0)
    return out


def lead_snapshots(
    leads: Sequence[Lead], filters: Iterable[Filter] = ()
) -> dict[int, LeadSnapshot]:
    """Snapshots of LEADS with the extra fields FILTERS need (a bounded few queries)."""
    extras = lead_extras_load(leads, extra_fields_of(filters))
    return {lead.pk: lead_snapshot(lead, extras.get(lead.pk)) for lead in leads}


def filters_of(raw: object) -> tuple[Filter, ...]:
    """Stored `[{field, op, value}]` as engine filters (validated when saved)."""
    if not isinstance(raw, list):
        return ()
    return tuple(
        Filter(str(f.get("field")), str(f.get("op")), f.get("value"))
        for f in raw
        if isinstance(f, dict)
    )


def caps_of(obj: Rule | PoolMember | Pool) -> Caps:
    return Caps(obj.cap_hour, obj.cap_day, obj.cap_week, obj.cap_month)


# --- the organisation's defaults ------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationDefaults:
    """What rules without their own schedule / after-hours policy inherit (seed 003)."""

    business_hours_id: int | None = None
    business_hours_name: str = ""
    after_hours: str = AfterHours.HOLD
    ring_all_after_hours: str = AfterHours.UNASSIGNED


def organisation_load(
    schedules: dict[int, ScheduleSnapshot], now: datetime
) -> OrganisationDefaults:
    """The organisation's defaults (1 query; +3 for a business-hours schedule not in
    SCHEDULES, which it is added to). No row yet: the defaults a new row would have."""
    org = Organisation.objects.select_related("business_hours").filter(pk=1).first()
    if org is None:
        return OrganisationDefaults()
    schedules_fill(schedules, [org.business_hours_id], now)
    return OrganisationDefaults(
        business_hours_id=org.business_hours_id,
        business_hours_name=org.business_hours.name if org.business_hours else "",
        after_hours=org.after_hours,
        ring_all_after_hours=org.ring_all_after_hours,
    )


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
    organisation: OrganisationDefaults | None = None,
) -> RuleSnapshot:
    """A rule with its prefetched sources and tiers, its schedule and default agent.

    The organisation's defaults are resolved here, so that the engine sees one schedule
    and one policy: no schedule of its own → the organisation's business hours; no
    after-hours policy of its own → the organisation's (its ring-all one for broadcast
    rules: seed 003 sends a ring-all lead that arrives after hours to Unassigned).
    """
    org = organisation or OrganisationDefaults()
    own = rule.schedule if rule.schedule_id else None
    schedule_origin, schedule_name = "rule", own.name if own is not None else ""
    schedule = schedules.get(rule.schedule_id) if rule.schedule_id else None
    if rule.schedule_id is None and org.business_hours_id is not None:
        schedule = schedules.get(org.business_hours_id)
        schedule_origin, schedule_name = "organisation", org.business_hours_name
    after_hours, after_hours_origin = rule.after_hours, "rule"
    if not after_hours:
        after_hours_origin = "organisation"
        after_hours = (
            org.ring_all_after_hours if rule.strategy == Strategy.BROADCAST else org.after_hours
        )
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
        after_hours=after_hours,
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
        schedule_origin=schedule_origin,
        schedule_name=schedule_name,
        after_hours_origin=after_hours_origin,
        metrics_window=rule.metrics_window or METRICS_WINDOW,
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
    caps: Caps = field(default_factory=Caps)  # the pool's own caps (the whole group)
    # leads the pool received in each window
    counts: ReceivedCounts = field(default_factory=ReceivedCounts)

    @property
    def usage(self) -> PoolUsage | None:
        """The pool's own caps and counts for the engine; None when it has no caps."""
        return PoolUsage(self.caps, self.counts) if self.caps.items() else None

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
            c = self.counts  # the pool's own windows hold one more lead too
            self.counts = ReceivedCounts(c.hour + 1, c.day + 1, c.week + 1, c.month + 1)
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


def pool_counts(*, pool_id: int, now: datetime, tz: str) -> ReceivedCounts:
    """Leads the whole pool received in the current hour/day/week/month, whoever received
    them (members since removed too): 1 query."""
    starts = window_starts(now, tz)
    windows = {p: Count("id", filter=Q(created_at__gte=starts[p])) for p in PERIODS}
    row = Assignment.objects.filter(
        pool_id=pool_id, created_at__gte=min(starts.values())
    ).aggregate(**windows)
    return ReceivedCounts(*(int(row[p] or 0) for p in PERIODS))


def pool_usages_load(
    caps: Mapping[int, Caps], rules: Sequence[RuleSnapshot], now: datetime
) -> dict[int, PoolUsage]:
    """The capped pools' own caps with their window counts in the rules' cap zones (1
    query per pool; the caller holds the pools' locks)."""
    tz_of = {r.pool_id: r.cap_timezone for r in rules if r.pool_id is not None}
    return {
        pool_id: PoolUsage(c, pool_counts(pool_id=pool_id, now=now, tz=tz_of[pool_id]))
        for pool_id, c in caps.items()
        if pool_id in tz_of
    }


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
    metrics_window: timedelta | None = None,
) -> PoolState:
    """The pool's members with agents, schedules and window counts (caps counted in
    TIMEZONE), the pool's own caps and counts (+2 queries when it has members, +1 more when
    it has caps), with the ORM.

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
    window = metrics_window or METRICS_WINDOW
    metrics = agent_metrics(agent_ids, now, window) if with_metrics and agent_ids else {}
    pool_caps = Caps()
    if rows:  # a pool without members decides nothing: its caps are not read
        pool_row = Pool.objects.filter(pk=pool_id).first()
        pool_caps = caps_of(pool_row) if pool_row is not None else Caps()
    used = pool_counts(pool_id=pool_id, now=now, tz=tz) if pool_caps.items() else ReceivedCounts()
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
        caps=pool_caps,
        counts=used,
    )


def profile_phone(user: User) -> str:
    profile: AgentProfile | None = getattr(user, "agent", None)
    return profile.phone if profile is not None else ""


@dataclass(frozen=True)
class PoolWanted:
    """A pool to load for rules counting caps in TIMEZONE, with what its strategies need
    (metrics over METRICS_WINDOW)."""

    pool_id: int
    timezone: str
    with_open_leads: bool = False
    with_metrics: bool = False
    metrics_window: timedelta = METRICS_WINDOW

    @property
    def key(self) -> PoolKey:
        """The loaded pool's key: pool, cap zone, and the metrics window when metrics are
        loaded (rules with other windows see the same agents through other metrics)."""
        return (self.pool_id, self.timezone, self.metrics_window if self.with_metrics else None)


PoolKey = tuple[int, str, timedelta | None]


def needs_metrics(rule: RuleSnapshot) -> bool:
    """Whether the rule reads agents' performance metrics (strategy or tiers)."""
    return rule.strategy == Strategy.PERFORMANCE or bool(rule.tiers)


def pool_key(rule: RuleSnapshot) -> PoolKey | None:
    """The key of the loaded pool a rule decides with (PoolWanted.key), None without pool."""
    if rule.pool_id is None:
        return None
    window = rule.metrics_window if needs_metrics(rule) else None
    return (rule.pool_id, rule.cap_timezone, window)


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
    *,
    agent_id: int,
    rules: Sequence[RuleSnapshot],
    now: datetime,
    caps_out: dict[int, Caps] | None = None,
) -> dict[int, MemberSnapshot]:
    """One agent's memberships of the rules' pools, with window counts: pool id → member
    (1 query for the rows, 1 per pool for the counts). CAPS_OUT receives the pools' own
    caps, for the pools that have caps (read with the rows; counted by the caller under the
    pool's lock, `pool_usages_load`)."""
    pool_ids = {r.pool_id for r in rules if r.pool_id is not None}
    if not pool_ids:
        return {}
    rows = list(
        PoolMember.objects.filter(agent_id=agent_id, pool_id__in=pool_ids)
        .select_related("agent__agent__schedule", "pool")
        .prefetch_related(*_prefetch("agent__agent__schedule"))
    )
    tz_of = {r.pool_id: r.cap_timezone for r in rules if r.pool_id is not None}
    # the tiers' metrics window: the first tiered rule's of each pool
    window_of: dict[int, timedelta] = {}
    for r in rules:
        if r.tiers and r.pool_id is not None:
            window_of.setdefault(r.pool_id, r.metrics_window)
    by_window: dict[timedelta, AgentMetrics | None] = {}
    if rows:
        for window in set(window_of.values()):
            by_window[window] = agent_metrics([agent_id], now, window).get(agent_id)
    out: dict[int, MemberSnapshot] = {}
    for m in rows:
        tiered = window_of.get(m.pool_id)
        metrics = by_window.get(tiered) if tiered is not None else None
        if caps_out is not None and caps_of(m.pool).items():
            caps_out[m.pool_id] = caps_of(m.pool)
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
