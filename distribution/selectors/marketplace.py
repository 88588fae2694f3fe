"""Reads for the marketplace's pages and API: outbound leads, distribution history, windows,
workflows, the turnover report, the manual-distribution preview and the cherry-pick hopper."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from crm.models import Contract
from distribution.engine import marketplace as engine
from distribution.engine.marketplace.labels import reason_label
from distribution.loaders.geo import lead_points
from distribution.loaders.marketplace import (
    contract_snapshots,
    lead_snapshot,
    outbound_records,
    workflow_snapshot,
)
from distribution.models import (
    OPEN_WINDOW_STATUSES,
    DistributionAttempt,
    DistributionWindow,
    OutboundLead,
    OutboundMethod,
    ReturnStatus,
    Workflow,
)
from distribution.selectors import history
from distribution.selectors.history import LazyCandidates
from leads.models import Lead

ZERO = Decimal(0)


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
            "status": o.status,
            "reason": o.delivery_reason or None,
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


def attempts_for_lead(
    *,
    lead_id: int,
    limit: int = 50,
    lead: Lead | None = None,
    outbound: list[OutboundLead] | None = None,
) -> list[DistributionAttempt]:
    """The lead's distribution history, newest first (users' and the system's attempts),
    each read like the routing one: `lines` (candidates with contract, company, reason in
    words, the chosen ones with price and delivery status), `rule_lines` and `sales` (the
    outbound leads it sold)."""
    attempts = list(
        DistributionAttempt.objects.filter(lead_id=lead_id)
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )
    if lead is None:
        lead = Lead.objects.filter(pk=lead_id).first()
    if outbound is None:
        outbound = list(outbound_list_for_lead(lead_id=lead_id))
    sales = history.attempt_sales(attempts, outbound)

    def explain(rows: list[dict[str, Any]], sold: list[OutboundLead]) -> list[dict[str, Any]]:
        return history.explain_contracts(rows, lead=lead, outbound=sold)

    for attempt in attempts:
        sold = sales.get(attempt.pk, [])
        rows = [c for c in attempt.candidates or [] if isinstance(c, dict)]
        lines = explain(rows, sold) if history.is_contract_rows(rows) else rows
        attempt.lines = lines  # type: ignore[attr-defined]
        attempt.sales = sold  # type: ignore[attr-defined]
        attempt.rule_lines = history.rule_lines(attempt.rules_tried, lines)  # type: ignore[attr-defined]
        # every candidate, decoded when the page opens it
        attempt.every_candidate = LazyCandidates(  # type: ignore[attr-defined]
            attempt, partial(explain, sold=sold)
        )
    return attempts


def lead_timeline(
    attempts: list[DistributionAttempt], outbound: list[OutboundLead]
) -> list[dict[str, Any]]:
    """The lead's distribution history and its outbound leads' deliveries in one timeline,
    newest first: {"kind": "attempt", "at", "attempt"} and {"kind": "delivery", "at",
    "outbound"}."""
    entries: list[dict[str, Any]] = [
        {"kind": "attempt", "at": a.created_at, "order": (a.created_at, 0, a.pk), "attempt": a}
        for a in attempts
    ]
    entries += [
        {"kind": "delivery", "at": o.created_at, "order": (o.created_at, 1, o.pk), "outbound": o}
        for o in outbound
    ]
    entries.sort(key=lambda e: e["order"], reverse=True)
    return entries


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
    reason_text: str = ""  # the reason in words


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
    timeline: list[dict[str, Any]] = field(default_factory=list)


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
    snap = lead_snapshot(lead, records, lead_points([lead]).get(lead.pk))
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
                reason_text=reason_label(
                    code,
                    distance_km=distance,
                    radius_km=c.radius_km,
                    lead_located=snap.latitude is not None and snap.longitude is not None,
                ),
            )
        )
    choices.sort(
        key=lambda ch: (ch.reason is not None, ch.hard, -ch.quality_score, -ch.price, ch.name)
    )
    outbound = list(outbound_list_for_lead(lead_id=lead.pk))
    attempts = attempts_for_lead(lead_id=lead.pk, lead=lead, outbound=outbound)
    return MarketplacePreview(
        lead=lead,
        workflow=workflow,
        choices=choices,
        auto_chosen=auto_chosen,
        auto_reason=auto_reason,
        room=engine.remaining_room(snap, wf) if workflow is not None else None,
        outbound=outbound,
        window=window_open_for_lead(lead_id=lead.pk),
        attempts=attempts,
        timeline=lead_timeline(attempts, outbound),
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
