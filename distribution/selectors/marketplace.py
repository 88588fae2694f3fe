"""Reads for the marketplace: the API's outbound list, and the engine snapshots of a lead,
its workflow and the contracts that may buy it, each in a fixed number of queries."""

from __future__ import annotations

import operator
import random
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Count,
    Max,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from crm.models import Contract, DeliveryInterval, Location
from distribution.engine import marketplace as engine
from distribution.engine.caps import window_starts
from distribution.models import (
    OPEN_WINDOW_STATUSES,
    DistributionAttempt,
    DistributionWindow,
    MarketVersion,
    OutboundLead,
    OutboundMethod,
    ReturnStatus,
    Workflow,
)
from leads.models import Lead

ZERO = Decimal(0)
_USAGE_PERIODS = ("day", "week", "month")


# --------------------------------------------------------------------------- API / pages


def outbound_for_lead(lead: Lead) -> list[dict[str, Any]]:
    """The lead's outbound leads as the API shows them (one query)."""
    rows = (
        OutboundLead.objects.filter(lead_id=lead.pk)
        .select_related("contract__company")
        .order_by("created_at", "id")
    )
    return [
        {
            "contract": o.contract.name,
            "company": o.contract.company.name,
            "method": o.method,
            "price": str(o.price),
        }
        for o in rows
    ]


def outbound_list_for_lead(*, lead_id: int) -> QuerySet[OutboundLead]:
    """Every outbound lead of an inbound lead with its contract, company and actor."""
    return (
        OutboundLead.objects.filter(lead_id=lead_id)
        .select_related("contract__company", "actor", "return_decided_by")
        .order_by("created_at", "id")
    )


def attempts_for_lead(*, lead_id: int, limit: int = 50) -> list[DistributionAttempt]:
    """The lead's distribution history, newest first (users' and the system's attempts)."""
    return list(
        DistributionAttempt.objects.filter(lead_id=lead_id)
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


def window_open_for_lead(*, lead_id: int) -> DistributionWindow | None:
    """The lead's active or paused window, if any."""
    return DistributionWindow.objects.filter(
        lead_id=lead_id, status__in=OPEN_WINDOW_STATUSES
    ).first()


def workflow_for_campaign(*, campaign_id: int | None) -> Workflow | None:
    """The campaign's workflow with its selection rules (two queries), or None."""
    if campaign_id is None:
        return None
    return (
        Workflow.objects.filter(campaign_id=campaign_id)
        .select_related("campaign")
        .prefetch_related("selection_rules")
        .first()
    )


def lead_has_workflow(*, lead_id: int) -> bool:
    """True when the lead's campaign has a marketplace workflow (one query)."""
    return Workflow.objects.filter(campaign__leads__id=lead_id).exists()


def turnover_by_contract(*, since: datetime | None = None) -> list[dict[str, Any]]:
    """Sold, returned and net turnover per contract (cherry-picks shown apart)."""
    qs = OutboundLead.objects.all()
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    sold = ~Q(method=OutboundMethod.CHERRY_PICK)
    returned = sold & Q(return_status=ReturnStatus.APPROVED)
    rows = (
        qs.values("contract__name", "contract__company__name")
        .annotate(
            sold_count=Count("id", filter=sold),
            sold=Sum("price", filter=sold, default=ZERO),
            returned_count=Count("id", filter=returned),
            returned=Sum("price", filter=returned, default=ZERO),
            cherry_count=Count("id", filter=~sold),
            cherry=Sum("price", filter=~sold, default=ZERO),
            last=Max("created_at"),
        )
        .order_by("contract__company__name", "contract__name")
    )
    return [{**row, "net": row["sold"] - row["returned"]} for row in rows]


# --------------------------------------------------------------------------- snapshots


def workflow_snapshot(workflow: Workflow | None) -> engine.WorkflowSnapshot:
    """The engine's view of a workflow; no workflow means no rules and no limit."""
    if workflow is None:
        return engine.WorkflowSnapshot(max_multiplication=None)
    rules = tuple(
        engine.SelectionRuleSnapshot(
            position=r.position,
            mode=engine.SelectionMode(r.mode),
            take=r.take,
            min_turnover=r.min_turnover,
        )
        for r in workflow.selection_rules.all()
    )
    return engine.WorkflowSnapshot(
        max_multiplication=workflow.max_multiplication,
        rules=rules,
        min_contracts=workflow.min_contracts,
        min_turnover=workflow.min_turnover,
    )


def lead_score(lead: Lead) -> float | None:
    """The lead's score for contracts' minimum lead score: `attributes.score` if numeric."""
    value = (lead.attributes or {}).get("score")
    if isinstance(value, bool):
        return None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def outbound_records(*, lead_ids: Iterable[int]) -> dict[int, list[engine.OutboundRecord]]:
    """Existing outbound leads per inbound lead, as the engine needs them (one query)."""
    out: dict[int, list[engine.OutboundRecord]] = {}
    rows = OutboundLead.objects.filter(lead_id__in=list(lead_ids)).values_list(
        "lead_id",
        "contract_id",
        "contract__company_id",
        "contract__max_share_count",
        "method",
        "contract__group_id",
    )
    for lead_id, contract_id, company_id, share, method, group_id in rows:
        out.setdefault(lead_id, []).append(
            engine.OutboundRecord(
                contract_id=contract_id,
                company_id=company_id,
                max_share_count=share,
                cherry_picked=method == OutboundMethod.CHERRY_PICK,
                contract_group_id=group_id,
            )
        )
    return out


def lead_snapshot(
    lead: Lead, records: Sequence[engine.OutboundRecord] = ()
) -> engine.InboundLeadSnapshot:
    """The engine's view of an inbound lead (campaigns are compared by id)."""
    base = engine.InboundLeadSnapshot(
        id=lead.pk,
        campaign=str(lead.campaign_id) if lead.campaign_id else None,
        created_at=lead.created_at,
        latitude=lead.latitude,
        longitude=lead.longitude,
        score=lead_score(lead),
    )
    return base.with_outbound(records)


@dataclass
class ContractRows:
    """Contract snapshots for the engine, and the names the explanation shows."""

    snapshots: list[engine.ContractSnapshot] = field(default_factory=list)
    names: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (contract, company)
    timezones: dict[int, str] = field(default_factory=dict)

    def by_id(self) -> dict[int, engine.ContractSnapshot]:
        return {c.id: c for c in self.snapshots}


_CONTRACT_COLUMNS = (
    "id",
    "name",
    "company_id",
    "company__name",
    "company__active",
    "campaign_id",
    "group_id",
    "price",
    "quality_score",
    "trial",
    "active",
    "paused",
    "starts",
    "ends",
    "radius_km",
    "max_share_count",
    "cap_day",
    "cap_week",
    "cap_month",
    "budget_day",
    "budget_week",
    "budget_month",
    "timezone",
    "max_lead_age",
    "min_lead_score",
    "last_outbound_at",
    "created_at",
)


def contracts_for_campaign(*, campaign_id: int, today: Any) -> QuerySet[Contract]:
    """The contracts automatic distribution considers: the campaign's active, not ended ones
    (the engine explains why each of them is or is not eligible)."""
    return Contract.objects.filter(campaign_id=campaign_id, active=True).exclude(ends__lt=today)


# Snapshots are immutable, and building thousands for every lead is a large part of a
# sale's cost: one is reused while everything it was built from is equal (compared in full,
# so a reused snapshot is always the one the current rows would give).
_SNAPSHOTS: dict[int, tuple[tuple[Any, ...], engine.ContractSnapshot]] = {}
_SNAPSHOTS_MAX = 100_000


def contract_snapshots(
    *,
    contracts: QuerySet[Contract],
    now: datetime,
    campaign_id: int | None = None,
) -> ContractRows:
    """Load the contracts of CONTRACTS as engine snapshots in four queries at most.

    1. The contract rows (with the company's name and active flag).
    2. Every location of their companies (service areas and distances).
    3. The delivery intervals of the contracts.
    4. Cap and budget usage of the capped contracts in their current windows.
    When every contract belongs to CAMPAIGN_ID, queries 2–4 select by campaign (a superset,
    trimmed here) rather than by thousands of ids, which costs more to send than to run.
    """
    rows = list(contracts.order_by("id").values_list(*_CONTRACT_COLUMNS))
    result = ContractRows()
    if not rows:
        return result
    companies: Any = (
        Contract.objects.filter(campaign_id=campaign_id).values("company_id")
        if campaign_id is not None
        else sorted({r[2] for r in rows})
    )
    located: dict[int, list[engine.LocationPoint]] = {}
    for company_id, lat, lon in Location.objects.filter(company_id__in=companies).values_list(
        "company_id", "latitude", "longitude"
    ):
        located.setdefault(company_id, []).append(engine.LocationPoint(lat, lon))
    ids = {r[0] for r in rows}
    interval_rows = (
        DeliveryInterval.objects.filter(contract__campaign_id=campaign_id)
        if campaign_id is not None
        else DeliveryInterval.objects.filter(contract_id__in=sorted(ids))
    )
    intervals: dict[int, list[engine.WeeklyInterval]] = {}
    for contract_id, weekday, start, end in interval_rows.values_list(
        "contract_id", "weekday", "start", "end"
    ):
        if contract_id in ids:
            intervals.setdefault(contract_id, []).append(engine.WeeklyInterval(weekday, start, end))
    capped = {r[0]: r[22] for r in rows if any(v is not None for v in r[16:22])}
    usage = cap_usage(contracts=capped, now=now, campaign_id=campaign_id) if capped else {}
    empty_usage = engine.CapUsage()
    no_caps = engine.CapLimits()
    for r in rows:
        (
            cid,
            name,
            company_id,
            company_name,
            company_active,
            contract_campaign,
            group_id,
            price,
            qs,
            trial,
            active,
            paused,
            starts,
            ends,
            radius,
            share,
            cap_day,
            cap_week,
            cap_month,
            budget_day,
            budget_week,
            budget_month,
            tz,
            max_age,
            min_score,
            last_at,
            created,
        ) = r
        schedule = intervals.get(cid)
        locs = tuple(located.get(company_id, ()))
        used = usage.get(cid, empty_usage)
        key = (r, locs, used, tuple(schedule) if schedule else None)
        cached = _SNAPSHOTS.get(cid)
        if cached is not None and cached[0] == key:
            snapshot = cached[1]
        else:
            snapshot = engine.ContractSnapshot(
                id=cid,
                company_id=company_id,
                campaign=str(contract_campaign),
                price=price,
                max_share_count=share,
                created_at=created,
                name=name,
                quality_score=qs,
                trial=trial,
                active=active and company_active,
                paused=paused,
                starts=starts,
                ends=ends,
                radius_km=radius,
                locations=locs,
                caps=engine.CapLimits(
                    day=cap_day,
                    week=cap_week,
                    month=cap_month,
                    day_budget=budget_day,
                    week_budget=budget_week,
                    month_budget=budget_month,
                )
                if cid in capped
                else no_caps,
                used=used,
                last_outbound_at=last_at,
                contract_group_id=group_id,
                delivery_schedule=(
                    engine.DeliverySchedule(tz, tuple(schedule)) if schedule else None
                ),
                max_lead_age=max_age,
                min_lead_score=min_score,
            )
            if len(_SNAPSHOTS) >= _SNAPSHOTS_MAX:
                _SNAPSHOTS.clear()
            _SNAPSHOTS[cid] = (key, snapshot)
        result.snapshots.append(snapshot)
        result.names[cid] = (name, company_name)
        result.timezones[cid] = tz
    return result


def cap_usage(
    *, contracts: dict[int, str], now: datetime, campaign_id: int | None = None
) -> dict[int, engine.CapUsage]:
    """Counted outbound leads and spend of each contract in its current day, week and month
    (in the contract's time zone), in one query.

    CONTRACTS maps contract id → time zone; when they all belong to CAMPAIGN_ID the query
    selects by campaign instead of by id. Cherry-picked outbound leads and approved returns
    are not counted.
    """
    if not contracts:
        return {}
    zones = sorted(set(contracts.values()))
    starts = {tz: window_starts(now, tz) for tz in zones}
    if campaign_id is None and connection.vendor == "postgresql":
        return _cap_usage_sql(contracts, starts)
    earliest = min(min(s[p] for p in _USAGE_PERIODS) for s in starts.values())
    conditions: dict[str, Q] = {}
    for period in _USAGE_PERIODS:
        if len(zones) == 1:
            conditions[period] = Q(created_at__gte=starts[zones[0]][period])
        else:
            conditions[period] = reduce(
                operator.or_,
                (Q(contract__timezone=tz, created_at__gte=starts[tz][period]) for tz in zones),
            )
    base = (
        OutboundLead.objects.filter(created_at__gte=earliest)
        .exclude(method=OutboundMethod.CHERRY_PICK)
        .exclude(return_status=ReturnStatus.APPROVED)
    )
    if campaign_id is not None:
        base = base.filter(contract__campaign_id=campaign_id)
    else:
        base = base.filter(contract_id__in=sorted(contracts))
    aggregates: dict[str, Any] = {}
    for period, cond in conditions.items():
        aggregates[period] = Count("id", filter=cond)
        aggregates[f"{period}_spent"] = Sum("price", filter=cond, default=ZERO)
    usage: dict[int, engine.CapUsage] = {}
    rows: list[dict[str, Any]] = list(base.values("contract_id").annotate(**aggregates).order_by())  # type: ignore[arg-type]
    for row in rows:
        if row["contract_id"] in contracts:
            usage[row["contract_id"]] = engine.CapUsage(
                day=row["day"],
                week=row["week"],
                month=row["month"],
                day_spent=row["day_spent"],
                week_spent=row["week_spent"],
                month_spent=row["month_spent"],
            )
    return usage


_CAP_USAGE_SQL = """
SELECT o.contract_id,
       count(*) FILTER (WHERE o.created_at >= z.day),
       count(*) FILTER (WHERE o.created_at >= z.week),
       count(*) FILTER (WHERE o.created_at >= z.month),
       coalesce(sum(o.price) FILTER (WHERE o.created_at >= z.day), 0),
       coalesce(sum(o.price) FILTER (WHERE o.created_at >= z.week), 0),
       coalesce(sum(o.price) FILTER (WHERE o.created_at >= z.month), 0)
FROM {outbound} o
JOIN unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])
     AS z(contract_id, day, week, month) ON z.contract_id = o.contract_id
WHERE o.created_at >= %s AND o.method <> %s AND o.return_status <> %s
GROUP BY o.contract_id
"""


def _cap_usage_sql(
    contracts: dict[int, str], starts: dict[str, dict[str, datetime]]
) -> dict[int, engine.CapUsage]:
    """`cap_usage` for a few contracts by id on PostgreSQL: one fixed statement, each
    contract joined to its own window starts (the selection hot path re-reads the usage of
    the contracts it chose or saw sold; building the ORM query cost more than running it)."""
    ids = sorted(contracts)
    windows = [starts[contracts[cid]] for cid in ids]
    earliest = min(w[p] for w in windows for p in _USAGE_PERIODS)
    params: list[Any] = [
        ids,
        [w["day"] for w in windows],
        [w["week"] for w in windows],
        [w["month"] for w in windows],
        earliest,
        OutboundMethod.CHERRY_PICK.value,
        ReturnStatus.APPROVED.value,
    ]
    usage: dict[int, engine.CapUsage] = {}
    with connection.cursor() as cursor:
        cursor.execute(_CAP_USAGE_SQL.format(outbound=OutboundLead._meta.db_table), params)
        for cid, day, week, month, day_spent, week_spent, month_spent in cursor.fetchall():
            usage[cid] = engine.CapUsage(
                day=day,
                week=week,
                month=month,
                day_spent=day_spent,
                week_spent=week_spent,
                month_spent=month_spent,
            )
    return usage


def windows_due(
    *, now: datetime | None = None, limit: int = 500
) -> list[tuple[int, int | None, bool]]:
    """Active windows whose next check is due, oldest due first, as (window id, workflow
    id, whether the workflow is batch-optimal)."""
    now = now or timezone.now()
    rows = (
        DistributionWindow.objects.filter(status="active", next_check_at__lte=now)
        .order_by("next_check_at", "id")
        .values_list(
            "id", "lead__campaign__workflow__id", "lead__campaign__workflow__batch_optimal"
        )[:limit]
    )
    return [(wid, wf, bool(batch)) for wid, wf, batch in rows]


def window_length_default(workflow: Workflow | None) -> tuple[timedelta, timedelta]:
    """(duration, every) of a new window: the workflow's settings, else the defaults."""
    if workflow is None:
        return Workflow.DEFAULT_WINDOW, Workflow.DEFAULT_EVERY
    return workflow.window_length, workflow.window_every


# --------------------------------------------------------------------------- admin pages


@dataclass
class ContractChoice:
    """A contract on the manual-distribution page, with the engine's verdict."""

    id: int
    name: str
    company: str
    price: Decimal
    quality_score: float
    max_share_count: int
    reason: str | None  # None: eligible for automatic distribution now
    hard: bool  # the reason also blocks a manual distribution
    distance_km: float | None


@dataclass
class MarketplacePreview:
    """What the manual-distribution page shows for a lead."""

    lead: Lead
    workflow: Workflow | None
    choices: list[ContractChoice]
    auto_chosen: list[str]
    auto_reason: str | None
    room: int | None
    outbound: list[OutboundLead]
    window: DistributionWindow | None
    attempts: list[DistributionAttempt]
    truncated: bool


_HARD = frozenset(
    {
        "inactive",
        "already_received",
        "share_count_exceeded",
        "multiplication_reached",
        "company_already_selected",
    }
)


def marketplace_preview(
    *, lead: Lead, now: datetime | None = None, search: str = "", limit: int = 300
) -> MarketplacePreview:
    """The contracts a manager may pick for a lead, each with the engine's eligibility
    reason, and what automatic distribution would choose now (nothing is written).

    Contracts: the lead's campaign's, else every active one (at most LIMIT, by name).
    """
    now = now or timezone.now()
    workflow = workflow_for_campaign(campaign_id=lead.campaign_id)
    base = Contract.objects.filter(active=True)
    if lead.campaign_id is not None:
        base = base.filter(campaign_id=lead.campaign_id)
    if search:
        base = base.filter(Q(name__icontains=search) | Q(company__name__icontains=search))
    ids = list(base.order_by("name").values_list("id", flat=True)[: limit + 1])
    truncated = len(ids) > limit
    rows = contract_snapshots(
        contracts=Contract.objects.filter(id__in=ids[:limit]),
        now=now,
    )
    records = outbound_records(lead_ids=[lead.pk]).get(lead.pk, [])
    snap = lead_snapshot(lead, records)
    wf = workflow_snapshot(workflow)
    auto_chosen: list[str] = []
    auto_reason: str | None = None
    distances: dict[int, float | None] = {}
    if lead.campaign_id is not None and rows.snapshots:
        decision = engine.select_contracts(
            snap, rows.snapshots, wf, now, random.Random(f"{lead.pk}:{now.timestamp()}")
        )
        auto_chosen = [rows.names[i][0] for i in decision.chosen_ids]
        auto_reason = str(decision.reason) if decision.reason else None
        distances = {line.contract_id: line.distance_km for line in decision.candidates}
    choices = []
    for c in rows.snapshots:
        why = engine.contract_eligibility(c, snap, now)
        code = str(why) if why is not None else None
        distance = distances.get(c.id)
        if distance is None and snap.latitude is not None and snap.longitude is not None:
            distance = engine.nearest_location_km(c, snap.latitude, snap.longitude)
        choices.append(
            ContractChoice(
                id=c.id,
                name=rows.names[c.id][0],
                company=rows.names[c.id][1],
                price=c.price,
                quality_score=c.quality_score,
                max_share_count=c.max_share_count,
                reason=code,
                hard=code in _HARD,
                distance_km=distance,
            )
        )
    choices.sort(
        key=lambda ch: (ch.reason is not None, ch.hard, -ch.quality_score, -ch.price, ch.name)
    )
    return MarketplacePreview(
        lead=lead,
        workflow=workflow,
        choices=choices,
        auto_chosen=auto_chosen,
        auto_reason=auto_reason,
        room=engine.remaining_room(snap, wf) if workflow is not None else None,
        outbound=list(outbound_list_for_lead(lead_id=lead.pk)),
        window=window_open_for_lead(lead_id=lead.pk),
        attempts=attempts_for_lead(lead_id=lead.pk),
        truncated=truncated,
    )


def hopper_leads(
    *, search: str = "", campaign_id: int | None = None, unsold: bool = False, limit: int = 50
) -> list[Lead]:
    """Recent inbound leads a manager may cherry-pick (any campaign or none), newest first;
    UNSOLD: only marketplace leads still waiting for a buyer."""
    qs = Lead.objects.select_related("campaign", "source").exclude(status__in=["converted", "lost"])
    if unsold:
        qs = qs.filter(status="waiting", campaign__workflow__isnull=False)
    if campaign_id is not None:
        qs = qs.filter(campaign_id=campaign_id)
    if search:
        term = search.strip()
        cond = (
            Q(email__icontains=term)
            | Q(first_name__icontains=term)
            | Q(last_name__icontains=term)
            | Q(city__icontains=term)
        )
        if term.isdigit():
            cond |= Q(pk=int(term))
        qs = qs.filter(cond)
    leads: list[Lead] = list(
        qs.annotate(outbound_count=Count("outbound")).order_by("-created_at", "-id")[:limit]
    )
    return leads


# --------------------------------------------------------------------------- selection cache


def market_generation() -> int | None:
    """The current market generation (None before anything was ever written)."""
    found = MarketVersion.objects.filter(pk=1).values_list("generation", flat=True).first()
    return None if found is None else int(found)


class MarketIndex:
    """A campaign's contracts compiled for selection, kept per process between leads.

    Built from the same rows as `contract_snapshots` (every location, every delivery hour,
    usage of the current windows) and reused while:
    - the market generation is the one read before building (triggers move it on any edit
      of contracts, companies, locations, delivery hours, or a returned / deleted outbound
      lead — see MarketVersion);
    - the day is the same, and the day window of every capped contract's time zone too;
    - the atomic block that last refreshed it is still open or its transaction committed
      (a rolled-back one may have shown it outbound leads that never existed).
    Before each selection `refresh` reads the outbound leads written since (one query) and
    re-reads the exact usage of the contracts they went to (one more, only if capped). A
    concurrent sale it has not seen yet can only make a contract look less used than it is:
    the service locks every chosen contract and re-checks it exactly before selling
    (`_select_locked`), so caps hold whatever the cache says.
    """

    def __init__(self, *, campaign_id: int, generation: int | None, now: datetime) -> None:
        self.campaign_id = campaign_id
        self.generation = generation
        self.today = now.date()
        self.lock = threading.RLock()
        self.pending: object | None = None  # the transaction that refreshed it last
        self.seen = (
            OutboundLead.objects.filter(contract__campaign_id=campaign_id).aggregate(top=Max("id"))[
                "top"
            ]
            or 0
        )
        rows = contract_snapshots(
            contracts=contracts_for_campaign(campaign_id=campaign_id, today=self.today),
            now=now,
            campaign_id=campaign_id,
        )
        self.names = rows.names
        self.timezones = rows.timezones
        self.table = engine.ContractTable(rows.snapshots)
        self.zones = self._zones(now)

    def _zones(self, now: datetime) -> dict[str, datetime]:
        capped = {c.id for c in self.table.contracts if c.caps != engine.CapLimits()}
        return {tz: window_starts(now, tz)["day"] for tz in {self.timezones[i] for i in capped}}

    def current(self, generation: int | None, now: datetime) -> bool:
        """Still valid for a selection at NOW in the current transaction."""
        if generation is None or generation != self.generation or now.date() != self.today:
            return False
        if self.pending is not None and not any(
            block is self.pending for block in connection.atomic_blocks
        ):
            return False  # refreshed in a block that ended without its commit being seen
        return all(window_starts(now, tz)["day"] == day for tz, day in self.zones.items())

    def refresh(self, now: datetime) -> None:
        """Follow the outbound leads written since the last look (see the class docstring)."""
        new = list(
            OutboundLead.objects.filter(id__gt=self.seen, contract__campaign_id=self.campaign_id)
            .values("contract_id")
            .annotate(top=Max("id"), last=Max("created_at"))
            .order_by()
        )
        if not new:
            return
        self.seen = max(self.seen, *(r["top"] for r in new))
        capped = {}
        for r in new:
            c = self.table.get(r["contract_id"])
            if c is None:
                continue
            if c.caps != engine.CapLimits():
                capped[c.id] = self.timezones[c.id]
            last = r["last"]
            if c.last_outbound_at is None or last > c.last_outbound_at:
                self.table.update(replace(c, last_outbound_at=last))
        usage = cap_usage(contracts=capped, now=now)
        for cid in capped:
            c = self.table.get(cid)
            assert c is not None
            self.put(replace(c, used=usage.get(cid, engine.CapUsage())))
        self.mark()

    def put(self, snapshot: engine.ContractSnapshot) -> None:
        """Swap in a fresher snapshot of one of the contracts."""
        self.table.update(snapshot)
        self.mark()

    def mark(self) -> None:
        """Remember the block that wrote into the index, until its transaction commits."""
        token = _transaction_token()
        if token is None:
            return
        if self.pending is not token:
            self.pending = token
            transaction.on_commit(lambda: self._committed(token))

    def _committed(self, token: object) -> None:
        if self.pending is token:
            self.pending = None


_INDEXES: OrderedDict[int, MarketIndex] = OrderedDict()
_INDEXES_MAX = 16
_INDEXES_LOCK = threading.Lock()


def _transaction_token() -> object | None:
    # The innermost atomic block (transaction or savepoint) the cache reads in: until the
    # transaction commits (on_commit clears it), an index it refreshed is trusted only while
    # that block is still open.
    return connection.atomic_blocks[-1] if connection.in_atomic_block else None


def market_index(*, campaign_id: int, now: datetime) -> MarketIndex:
    """The campaign's compiled contracts, current at NOW (built or refreshed as needed).

    Call with the returned index's `lock` held while selecting (threads share it).
    """
    generation = market_generation()  # read before the rows: a later edit moves it again
    with _INDEXES_LOCK:
        index = _INDEXES.get(campaign_id)
    if index is None or not index.current(generation, now):
        index = MarketIndex(campaign_id=campaign_id, generation=generation, now=now)
        index.mark()
        with _INDEXES_LOCK:
            _INDEXES[campaign_id] = index
            _INDEXES.move_to_end(campaign_id)
            while len(_INDEXES) > _INDEXES_MAX:
                _INDEXES.popitem(last=False)
        return index
    with index.lock:
        index.refresh(now)
    return index


def market_indexes_clear() -> None:
    """Forget every compiled campaign (tests; a process that wants a fresh start)."""
    with _INDEXES_LOCK:
        _INDEXES.clear()
