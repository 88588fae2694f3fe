"""Loaders of the marketplace engine's snapshots: a lead, its outbound leads, its workflow
and the contracts that may buy it, each in a fixed number of queries (reads for the engine,
not for pages)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from crm.models import Contract, DeliveryInterval, Location
from distribution.db.usage import cap_usage
from distribution.engine import marketplace as engine
from distribution.models import OutboundLead, OutboundMethod, Workflow
from leads.models import Lead


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
    lead: Lead,
    records: Sequence[engine.OutboundRecord] = (),
    point: tuple[float, float] | None = None,
) -> engine.InboundLeadSnapshot:
    """The engine's view of an inbound lead (campaigns are compared by id). POINT: the
    coordinates of its place (`services.geo.lead_points_resolve`) when it has none."""
    lat, lon = lead.latitude, lead.longitude
    if (lat is None or lon is None) and point is not None:
        lat, lon = point
    base = engine.InboundLeadSnapshot(
        id=lead.pk,
        campaign=str(lead.campaign_id) if lead.campaign_id else None,
        created_at=lead.created_at,
        latitude=lat,
        longitude=lon,
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


# A contract's caps and budgets: a contract with none of them set has no usage to count.
CAP_COLUMNS = ("cap_day", "cap_week", "cap_month", "budget_day", "budget_week", "budget_month")
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
    *CAP_COLUMNS,
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
