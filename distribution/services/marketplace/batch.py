"""Batch-optimal allocation: every lead waiting in an active window of a workflow is
allocated at once by the optimiser (a MILP never worse than greedy in arrival order)."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from crm.models import Contract
from distribution.engine import marketplace as engine
from distribution.loaders.marketplace import (
    contract_snapshots,
    contracts_for_campaign,
    lead_snapshot,
    outbound_records,
    workflow_snapshot,
)
from distribution.models import (
    DistributionAttempt,
    DistributionWindow,
    OutboundLead,
    OutboundMethod,
    WindowStatus,
    Workflow,
)
from distribution.services.geo import lead_points_resolve
from distribution.services.marketplace.delivery import deliveries_on_commit, outbound_prepare
from distribution.services.marketplace.history import STORED_CANDIDATES, compact_offers
from distribution.services.marketplace.state import (
    close_window,
    lock_contracts,
    save_lead,
    set_status,
    settle,
)
from leads.models import Lead, LeadEvent, LeadStatus

Trigger = DistributionAttempt.Trigger

ZERO_D = Decimal(0)


def workflow_allocate_batch(
    *, workflow_id: int, now: datetime | None = None, time_limit: float = 30.0
) -> dict[str, Any]:
    """Allocate every lead waiting in an active window of a batch-optimal workflow at once.

    1. Lock the workflow's active windows (skipping those being rechecked elsewhere), their
       leads in id order, then the campaign's contracts in id order; only then read usage,
       so caps and budgets are exact for the whole batch.
    2. Finish the windows that ended; the others' leads become batch leads with their
       eligible contracts (the engine's eligibility) and outbound situation.
    3. `optimise_batch` (a MILP solved by HiGHS, never worse than greedy in arrival order)
       allocates them under caps, budgets, share counts, multiplication and minimums.
    4. Persist the outbound leads, record one attempt per lead, and reschedule or finish
       each window.
    Returns figures of the run (counts, turnover, solver status).
    """
    from distribution.engine.marketplace import batch, optimizer

    now = now or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        workflow = (
            Workflow.objects.select_related("campaign")
            .prefetch_related("selection_rules")
            .filter(pk=workflow_id)
            .first()
        )
        if workflow is None:
            return {}
        windows = list(
            DistributionWindow.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=WindowStatus.ACTIVE, lead__campaign_id=workflow.campaign_id)
            .order_by("lead_id", "id")
        )
        leads = {
            lead.pk: lead
            for lead in Lead.objects.select_for_update(of=("self",))
            .select_related("campaign")
            .filter(pk__in=[w.lead_id for w in windows])
            .order_by("id")
        }
        figures: dict[str, Any] = {
            "windows": len(windows),
            "finished": 0,
            "distributed": 0,
            "not_distributed": 0,
            "outbound": 0,
            "turnover": ZERO_D,
        }
        live: list[DistributionWindow] = []
        for window in windows:
            if now >= window.ends_at:
                close_window(
                    window,
                    leads[window.lead_id],
                    status=WindowStatus.FINISHED,
                    reason="ended",
                    now=now,
                )
                figures["finished"] += 1
            else:
                live.append(window)
        if not live:
            return figures
        # Leads sent without coordinates: their places', one query for the batch (before the
        # contracts are locked: a place not seen yet may be asked of the geocoder).
        points = lead_points_resolve([leads[w.lead_id] for w in live])
        contracts = contracts_for_campaign(campaign_id=workflow.campaign_id, today=now.date())
        lock_contracts(list(contracts.values_list("id", flat=True)))
        rows = contract_snapshots(
            contracts=contracts,
            now=now,
            campaign_id=workflow.campaign_id,
        )
        records = outbound_records(lead_ids=[w.lead_id for w in live])
        wf = workflow_snapshot(workflow)
        snaps = {
            w.lead_id: lead_snapshot(
                leads[w.lead_id], records.get(w.lead_id, []), points.get(w.lead_id)
            )
            for w in live
        }
        batch_leads = [batch.batch_lead(snaps[w.lead_id], rows.snapshots, wf, now) for w in live]
        allocation = optimizer.optimise_batch(
            batch_leads,
            [batch.batch_contract(c) for c in rows.snapshots],
            time_limit=time_limit,
        )
        by_contract = rows.by_id()
        batch_run = {
            "batch": allocation.method,
            "status": allocation.status,
            "objective": str(allocation.objective),
            "leads": len(live),
            "workflow": workflow.campaign.slug,
        }
        outbound: list[OutboundLead] = []
        attempts: list[DistributionAttempt] = []
        elapsed = (time.perf_counter() - started) * 1000
        for window, blead in zip(live, batch_leads, strict=True):
            lead = leads[window.lead_id]
            sold = allocation.by_lead.get(lead.pk, ())
            outbound += [
                OutboundLead(
                    lead=lead,
                    contract_id=a.contract_id,
                    method=OutboundMethod.AUTO,
                    price=a.price,
                    created_at=now,
                    window=window,
                )
                for a in sold
            ]
            sold_ids = {a.contract_id for a in sold}
            lines = [_batch_line(by_contract[a.contract_id], rows.names, None) for a in sold]
            lines += [
                _batch_line(by_contract[o.contract_id], rows.names, "not_selected_batch")
                for o in blead.offers
                if o.contract_id not in sold_ids
            ][: STORED_CANDIDATES - len(lines)]
            turnover = sum((a.price for a in sold), ZERO_D)
            attempts.append(
                DistributionAttempt(
                    lead=lead,
                    trigger=Trigger.RECHECK,
                    outcome="distributed" if sold else "not_selected_batch",
                    reason=(
                        f"Batch allocation ({allocation.method}, {allocation.status}) over "
                        f"{len(live)} waiting lead(s): sold to {len(sold)} contract(s), "
                        f"turnover {turnover}; {len(blead.offers)} eligible."
                    ),
                    candidates=lines,
                    all_candidates=compact_offers(
                        [a.contract_id for a in sold],
                        [o.contract_id for o in blead.offers if o.contract_id not in sold_ids],
                        "not_selected_batch",
                    ),
                    rules_tried=[batch_run],
                    duration_ms=elapsed,
                    created_at=now,
                )
            )
            figures["distributed" if sold else "not_distributed"] += 1
            figures["turnover"] += turnover
        to_deliver = outbound_prepare(outbound, now=now)  # webhook / e-mail: pending
        OutboundLead.objects.bulk_create(outbound)
        deliveries_on_commit(to_deliver)
        DistributionAttempt.objects.bulk_create(attempts)
        figures["outbound"] = len(outbound)
        touched = {o.contract_id for o in outbound}
        if touched:
            Contract.objects.filter(id__in=touched).update(last_outbound_at=now)
        by_lead: dict[int, list[engine.OutboundRecord]] = {}
        for o in outbound:
            c = by_contract[o.contract_id]
            by_lead.setdefault(o.lead_id, []).append(
                engine.OutboundRecord(
                    contract_id=c.id,
                    company_id=c.company_id,
                    max_share_count=c.max_share_count,
                    contract_group_id=c.contract_group_id,
                )
            )
        for window in live:
            lead = leads[window.lead_id]
            new = by_lead.get(lead.pk, [])
            if new:
                save_lead(
                    lead,
                    set_status(
                        lead, LeadStatus.DISTRIBUTED, note=f"sold to {len(new)} contract(s) (batch)"
                    ),
                )
                LeadEvent.objects.create(
                    lead=lead,
                    kind=LeadEvent.Kind.DISTRIBUTED,
                    message=f"auto (batch): {len(new)} outbound lead(s)",
                    data={"contracts": [r.contract_id for r in new], "method": "auto"},
                )
            after = snaps[lead.pk].with_outbound([*records.get(lead.pk, []), *new])
            settle(lead=lead, window=window, room=engine.remaining_room(after, wf), now=now)
        figures.update(
            method=allocation.method,
            status=allocation.status,
            turnover=str(figures["turnover"]),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return figures


def _batch_line(
    contract: engine.ContractSnapshot, names: dict[int, tuple[str, str]], reason: str | None
) -> dict[str, Any]:
    name, company = names.get(contract.id, (str(contract.id), ""))
    return {
        "contract": name,
        "company": company,
        "contract_id": contract.id,
        "rank": None,
        "rule": None,
        "reason": reason,
        "note": "batch_optimal",
        "distance_km": None,
    }
