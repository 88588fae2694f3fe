"""Engine snapshots from the database, in a bounded number of queries whatever the sizes.

The services lock rows, then call these loaders; the engine gets frozen dataclasses only.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet

from accounts.models import AgentProfile, User
from distribution.engine.caps import window_starts
from distribution.engine.metrics import Activity as MetricActivity
from distribution.engine.metrics import AssignedLead, compute_metrics
from distribution.engine.routing import rule_order
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
from distribution.models import (
    Assignment,
    Automation,
    Holiday,
    Pool,
    PoolMember,
    Rule,
    Schedule,
    ScheduleInterval,
)
from distribution.models import (
    PerformanceTier as TierRow,
)
from leads.models import OPEN_STATUSES, Activity, Campaign, Lead, Source

METRICS_WINDOW = timedelta(days=30)  # trailing window of the performance metrics


# --- schedules ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _country_holidays(country: str, year: int) -> dict[date, str]:
    """One year of COUNTRY's public holidays with their names (cached per process)."""
    import holidays as holidays_pkg

    if country not in supported_countries():
        return {}  # an unknown country has no public holidays (config validation names it)
    table = holidays_pkg.country_holidays(country, years=year)
    return {d: str(n) for d, n in table.items()}


@functools.cache
def supported_countries() -> frozenset[str]:
    """The country codes the holidays package knows."""
    import holidays as holidays_pkg

    return frozenset(holidays_pkg.list_supported_countries())


def country_holidays(country: str, around: date) -> dict[date, str]:
    """The public holidays of COUNTRY from last year to two years ahead, with names."""
    table: dict[date, str] = {}
    for year in range(around.year - 1, around.year + 3):
        table.update(_country_holidays(country, year))
    return dict(sorted(table.items()))


def schedule_snapshot(schedule: Schedule, today: date) -> ScheduleSnapshot:
    """The schedule with its prefetched intervals, holidays, and its country's holidays."""
    days = {h.date for h in schedule.holidays.all()}
    if schedule.holiday_country:
        for year in range(today.year - 1, today.year + 3):
            days |= _country_holidays(schedule.holiday_country, year).keys()
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


# --- the routing configuration, cached per process ------------------------------------------

# The tables the cached configuration is built from. Agents, users and pool members are not
# among them: availability, activity and turns change all day, so they are read fresh.
CONFIG_MODELS: tuple[type[Any], ...] = (
    Rule,
    Rule.sources.through,
    TierRow,
    Schedule,
    ScheduleInterval,
    Holiday,
    Automation,
    Source,
    Campaign,
)


def config_fingerprint() -> str | None:
    """A hash of every row of the configuration tables (1 query, PostgreSQL only; None
    elsewhere, meaning "do not cache").

    It hashes the rows' contents, not an `updated_at` or a generation counter that each
    writer must remember to bump: an admin save, apply_config, a `QuerySet.update()`, an
    m2m change, raw SQL or a rolled-back transaction all change (or restore) it, whatever
    the writer and whatever the app servers' clocks. The tables are small (rules, schedules,
    holidays, tiers, automations, sources, campaigns), so the scan costs well under a
    millisecond.
    """
    if connection.vendor != "postgresql":
        return None
    qn = connection.ops.quote_name
    # one md5 per row (fixed width), so no row content can shift into its neighbour's
    parts = ", ".join(
        f"coalesce((SELECT string_agg(md5(t::text), '' ORDER BY t.{qn(m._meta.pk.column)}) "
        f"FROM {qn(m._meta.db_table)} t), '')"
        for m in CONFIG_MODELS
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT md5(concat_ws('#', {parts}))")
        row = cursor.fetchone()
    return str(row[0]) if row else None


@dataclass(frozen=True)
class RoutingConfig:
    """The rules, automations and schedules as loaded for one fingerprint; shared by every
    operation of the process until the fingerprint changes, so never mutated."""

    key: tuple[str, int, str]  # fingerprint, year (country holidays), site time zone
    rules: tuple[Rule, ...]
    snapshots: tuple[RuleSnapshot, ...]  # default agents left out: they are read fresh
    automations: tuple[Automation, ...]  # enabled `created` automations, in order
    # rules' schedules when built; agents' added as pools are loaded (schedules_fill), which
    # is safe because they are read after the fingerprint: a change in between changes it
    schedules: dict[int, ScheduleSnapshot]

    def snapshot(self, rule_id: int) -> RuleSnapshot | None:
        """The rule's snapshot, without its default agent (checks of members only)."""
        return next((r for r in self.snapshots if r.id == rule_id), None)


_config_lock = threading.Lock()
_config: RoutingConfig | None = None


def _config_build(now: datetime, key: tuple[str, int, str]) -> RoutingConfig:
    rules = tuple(rules_queryset())
    today = now.date()
    schedules = {
        r.schedule.pk: schedule_snapshot(r.schedule, today) for r in rules if r.schedule is not None
    }
    automations = tuple(
        Automation.objects.filter(enabled=True, trigger=Automation.Trigger.CREATED).order_by(
            "priority", "name"
        )
    )
    return RoutingConfig(
        key=key,
        rules=rules,
        snapshots=tuple(rule_snapshot(r, now, schedules=schedules) for r in rules),
        automations=automations,
        schedules=schedules,
    )


def routing_config(now: datetime) -> RoutingConfig:
    """The routing configuration: the cached one while the fingerprint is unchanged, else
    loaded again (~8 queries). 1 query when cached."""
    global _config
    fingerprint = config_fingerprint()
    key = (fingerprint or "", now.year, settings.TIME_ZONE)
    cached = _config
    if fingerprint is not None and cached is not None and cached.key == key:
        return cached
    config = _config_build(now, key)
    if fingerprint is not None:
        with _config_lock:
            _config = config
    return config


@dataclass
class RuleBook:
    """Every rule as engine snapshots plus the model rows, for one operation: the cached
    configuration with the users it names (default agents, automation targets) read fresh."""

    snapshots: list[RuleSnapshot]
    models: dict[int, Rule]
    automations: list[Automation] = field(default_factory=list)
    schedules: dict[int, ScheduleSnapshot] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)  # default agents, automation targets
    _index: dict[int, RuleSnapshot] = field(default_factory=dict, repr=False)
    _indexed: list[RuleSnapshot] | None = field(default=None, repr=False)
    _ordered: list[RuleSnapshot] = field(default_factory=list, repr=False)
    _ordered_from: list[RuleSnapshot] | None = field(default=None, repr=False)

    def ordered(self) -> list[RuleSnapshot]:
        """The snapshots in the order rules are tried (sorted once, not once per lead)."""
        if self._ordered_from is not self.snapshots:
            self._ordered = rule_order(self.snapshots)
            self._ordered_from = self.snapshots
        return self._ordered

    def snapshot(self, rule_id: int | None) -> RuleSnapshot | None:
        # called per lead in a batch: an index, rebuilt when someone swaps the list (simulate)
        if self._indexed is not self.snapshots:
            self._index = {r.id: r for r in reversed(self.snapshots)}
            self._indexed = self.snapshots
        return self._index.get(rule_id) if rule_id is not None else None


def rulebook_load(now: datetime, *, automations: bool = False) -> RuleBook:
    """All rules (disabled ones too: the history lists them as tried): the cached
    configuration (1 query) plus the users it names (1 query when there are any)."""
    config = routing_config(now)
    user_ids = {r.default_agent_id for r in config.rules if r.default_agent_id is not None}
    if automations:
        user_ids |= {a.target_user_id for a in config.automations if a.target_user_id is not None}
    # users change at any time (away, deactivated): never served from the cache
    users = (
        {u.pk: u for u in User.objects.select_related("agent").filter(pk__in=user_ids)}
        if user_ids
        else {}
    )
    schedules_fill(
        config.schedules,
        (getattr(getattr(u, "agent", None), "schedule_id", None) for u in users.values()),
        now,
    )
    snapshots = []
    for model, snap in zip(config.rules, config.snapshots, strict=True):
        default = users.get(model.default_agent_id) if model.default_agent_id else None
        if default is not None:
            snap = replace(
                snap, default_agent=agent_snapshot(default, now, schedules=config.schedules)
            )
        snapshots.append(snap)
    return RuleBook(
        snapshots,
        {r.pk: r for r in config.rules},
        automations=list(config.automations) if automations else [],
        schedules=config.schedules,
        users=users,
    )


# --- pools --------------------------------------------------------------------------------


@dataclass
class PoolState:
    """A locked pool's members as snapshots; updated in memory as leads are given out."""

    pool_id: int
    timezone: str
    members: list[MemberSnapshot]
    index: dict[int, int]  # agent id → position in `members`
    rows: dict[int, PoolMember] = field(default_factory=dict)  # member id → row (ORM load)
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

    def set_last_turn(self, agent_id: int, stamp: datetime) -> None:
        i = self.index.get(agent_id)
        if i is not None:
            m = self.members[i]
            self.members[i] = replace(m, agent=replace(m.agent, last_turn_at=stamp))


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


def _member_counts(
    *, pool_id: int, now: datetime, tz: str, with_open_leads: bool
) -> tuple[dict[int, ReceivedCounts], dict[int, int]]:
    """Per agent of the pool: leads received through it in each current window and, when
    asked, open leads owned (1 query, PostgreSQL). A fixed SQL text: building the same with
    ORM subqueries cost more CPU than the query itself."""
    starts = window_starts(now, tz)
    qn = connection.ops.quote_name
    given, lead = qn(Assignment._meta.db_table), qn(Lead._meta.db_table)
    windows = ", ".join(f"count(*) FILTER (WHERE a.created_at >= %s) AS {p}" for p in PERIODS)
    owned = (
        f"(SELECT count(*) FROM {lead} l WHERE l.owner_id = m.agent_id AND l.status = ANY(%s))"
        if with_open_leads
        else "0"
    )
    # the lateral count per member walks the (pool, agent, created_at) index
    sql = (
        f"SELECT m.agent_id, c.*, {owned} FROM "
        f"{qn(PoolMember._meta.db_table)} m CROSS JOIN LATERAL (SELECT {windows} "
        f"FROM {given} a WHERE a.pool_id = m.pool_id AND a.agent_id = m.agent_id "
        f"AND a.created_at >= %s) c WHERE m.pool_id = %s"
    )
    # in the order of the placeholders: open statuses, window starts, earliest, pool
    params: list[Any] = [[str(s) for s in OPEN_STATUSES]] if with_open_leads else []
    params += [starts[p] for p in PERIODS] + [min(starts.values()), pool_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return (
        {r[0]: ReceivedCounts(*r[1:5]) for r in rows},
        {r[0]: r[5] for r in rows} if with_open_leads else {},
    )


def pool_state_load(
    *,
    pool_id: int,
    rule: RuleSnapshot,
    now: datetime,
    with_open_leads: bool = False,
    with_metrics: bool = False,
    schedules: dict[int, ScheduleSnapshot] | None = None,
) -> PoolState:
    """The pool's members with agents, schedules and window counts.

    With SCHEDULES (the cached configuration's): the members with their agents, then their
    window counts and open leads (2 queries, +2 for metrics); without, schedules are
    prefetched too (4–7 queries).
    """
    members_qs = PoolMember.objects.filter(pool_id=pool_id).order_by("position", "id")
    tz = rule.cap_timezone
    agent_ids: list[int]
    if schedules is None:
        rows = list(
            members_qs.select_related("agent__agent__schedule").prefetch_related(
                *_prefetch("agent__agent__schedule")
            )
        )
        agent_ids = [m.agent_id for m in rows]
        counts = received_counts(pool_id=pool_id, agent_ids=agent_ids, now=now, tz=tz)
        open_leads = open_lead_counts(agent_ids) if with_open_leads and agent_ids else {}
    else:
        rows = list(members_qs.select_related("agent__agent"))
        agent_ids = [m.agent_id for m in rows]
        # the agents' schedules join the cached configuration's
        schedules_fill(
            schedules,
            (getattr(getattr(m.agent, "agent", None), "schedule_id", None) for m in rows),
            now,
        )
        if connection.vendor == "postgresql":
            counts, open_leads = _member_counts(
                pool_id=pool_id, now=now, tz=tz, with_open_leads=with_open_leads
            )
        else:  # the fixed SQL uses LATERAL and FILTER; SQLite takes the ORM's version
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
        rows={m.pk: m for m in rows},
        contacts={m.agent_id: (m.agent.email or "", _profile_phone(m.agent)) for m in rows},
    )


def _profile_phone(user: User) -> str:
    profile: AgentProfile | None = getattr(user, "agent", None)
    return profile.phone if profile is not None else ""


@dataclass(frozen=True)
class PoolWanted:
    """A pool to load for rules counting caps in TIMEZONE, with what its strategies need."""

    pool_id: int
    timezone: str
    with_open_leads: bool = False
    with_metrics: bool = False


def _json_value(value: object) -> object:
    # the driver hands jsonb over as text (Django reads JSON columns itself)
    return json.loads(value) if isinstance(value, str) else value


def pools_state_load(
    wanted: Sequence[PoolWanted], *, now: datetime, schedules: dict[int, ScheduleSnapshot]
) -> dict[tuple[int, str], PoolState]:
    """Several locked pools at once, keyed (pool id, cap time zone): members with their
    agents and window counts, and open leads where asked (1 query, PostgreSQL; +2 for
    metrics). The agents' schedules join the cached configuration's SCHEDULES.

    A fixed SQL text returning plain columns: building the ORM query and three model rows
    per member cost more than the query itself, for one lead as for a batch.
    """
    if not wanted:
        return {}
    qn = connection.ops.quote_name
    member, user = qn(PoolMember._meta.db_table), qn(User._meta.db_table)
    profile, given, lead = (
        qn(AgentProfile._meta.db_table),
        qn(Assignment._meta.db_table),
        qn(Lead._meta.db_table),
    )
    starts = [window_starts(now, w.timezone) for w in wanted]
    # one row of window starts per wanted pool; the lateral count per member walks the
    # (pool, agent, created_at) index, the open-lead count the owner index
    # no pool asking for open leads: no subquery to plan (a third of the planning time)
    with_open_leads = any(w.with_open_leads for w in wanted)
    owned = (
        f"CASE WHEN w.open THEN (SELECT count(*) FROM {lead} l WHERE l.owner_id = m.agent_id "
        "AND l.status = ANY(%s)) ELSE 0 END "
        if with_open_leads
        else "0 "
    )
    sql = (
        "SELECT w.k, m.id, m.agent_id, m.position, m.weight, m.active, m.filters, m.cap_hour, "
        "m.cap_day, m.cap_week, m.cap_month, u.email, u.is_active, p.id, p.active, "
        "p.available, p.last_turn_at, p.schedule_id, p.phone, c.hour, c.day, c.week, c.month, "
        + owned
        + "FROM unnest(%s::integer[], %s::bigint[], %s::timestamptz[], %s::timestamptz[], "
        "%s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::boolean[]) "
        "AS w(k, pool_id, hour, day, week, month, earliest, open) "
        f"JOIN {member} m ON m.pool_id = w.pool_id "
        f"JOIN {user} u ON u.id = m.agent_id "
        f"LEFT JOIN {profile} p ON p.user_id = m.agent_id "
        "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE a.created_at >= w.hour) AS hour, "
        "count(*) FILTER (WHERE a.created_at >= w.day) AS day, "
        "count(*) FILTER (WHERE a.created_at >= w.week) AS week, "
        "count(*) FILTER (WHERE a.created_at >= w.month) AS month "
        f"FROM {given} a WHERE a.pool_id = m.pool_id AND a.agent_id = m.agent_id "
        "AND a.created_at >= w.earliest) c "
        "ORDER BY w.k, m.position, m.id"
    )
    params: list[Any] = [[str(s) for s in OPEN_STATUSES]] if with_open_leads else []
    params += [
        list(range(len(wanted))),
        [w.pool_id for w in wanted],
        *([s[p] for s in starts] for p in PERIODS),
        [min(s.values()) for s in starts],
        [w.with_open_leads for w in wanted],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    schedules_fill(schedules, {r[17] for r in rows}, now)
    per_pool: list[list[tuple[Any, ...]]] = [[] for _ in wanted]
    for row in rows:
        per_pool[row[0]].append(row)
    out: dict[tuple[int, str], PoolState] = {}
    for w, pool_rows in zip(wanted, per_pool, strict=True):
        agent_ids = [r[2] for r in pool_rows]
        metrics = agent_metrics(agent_ids, now) if w.with_metrics and agent_ids else {}
        members = [_member_snapshot(r, metrics.get(r[2]), schedules) for r in pool_rows]
        out[(w.pool_id, w.timezone)] = PoolState(
            pool_id=w.pool_id,
            timezone=w.timezone,
            members=members,
            index={m.agent.id: i for i, m in enumerate(members)},
            contacts={r[2]: (r[11] or "", r[18] or "") for r in pool_rows},
        )
    return out


def _member_snapshot(
    row: tuple[Any, ...],
    metrics: AgentMetrics | None,
    schedules: Mapping[int, ScheduleSnapshot],
) -> MemberSnapshot:
    """One row of pools_state_load as agent_snapshot and pool_state_load build it."""
    (_, member_id, agent_id, position, weight, active, filters, hour, day, week, month) = row[:11]
    email, user_active, profile_id, profile_active, available, last_turn, schedule_id = row[11:18]
    if profile_id is None:  # a user without agent profile is inactive
        agent = AgentSnapshot(id=agent_id, email=email or "", active=False)
    else:
        agent = AgentSnapshot(
            id=agent_id,
            email=email or "",
            active=bool(profile_active and user_active),
            available=available,
            schedule=schedules.get(schedule_id) if schedule_id else None,
            last_turn_at=last_turn,
            open_leads=row[23],
            metrics=metrics,
        )
    return MemberSnapshot(
        id=member_id,
        agent=agent,
        position=position,
        weight=float(weight),
        active=active,
        caps=Caps(hour, day, week, month),
        filters=filters_of(_json_value(filters)),
        received_counts=ReceivedCounts(*row[19:23]),
    )


def pools_lock(pool_ids: Iterable[int]) -> None:
    """Lock pool rows in id order (no deadlocks): pickers of one pool take turns, so
    round robin stays fair and caps exact across workers."""
    ids = sorted(set(pool_ids))
    if not ids:
        return
    if connection.vendor == "postgresql":  # a fixed text: no ORM query to build per lead
        qn = connection.ops.quote_name
        pk = qn(str(Pool._meta.pk.column))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk} FROM {qn(Pool._meta.db_table)} WHERE {pk} = ANY(%s) "
                f"ORDER BY {pk} FOR UPDATE",
                [ids],
            )
            cursor.fetchall()
        return
    list(
        Pool.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


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
