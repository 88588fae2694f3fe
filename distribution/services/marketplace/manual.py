"""A manager's own sales: manual distribution to picked contracts (within the hard limits)
and cherry-picking (not counted as distributed, toward share counts or caps)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Contract
from distribution.engine import marketplace as engine
from distribution.errors import MarketplaceError
from distribution.loaders.marketplace import (
    contract_snapshots,
    lead_snapshot,
    outbound_records,
    workflow_snapshot,
)
from distribution.models import DistributionAttempt, OutboundLead, OutboundMethod
from distribution.selectors.marketplace import window_open_for_lead, workflow_for_campaign
from distribution.services.geo import lead_points_resolve
from distribution.services.marketplace.delivery import deliveries_on_commit, outbound_prepare
from distribution.services.marketplace.history import (
    attempt_record,
    candidate_lines,
    compact_lines,
    describe_decision,
    reason_histogram,
    rules_tried_lines,
)
from distribution.services.marketplace.sale import persist_outbound
from distribution.services.marketplace.state import lead_locked, lock_contracts, save_lead
from leads.models import DistributionState, LeadEvent

Trigger = DistributionAttempt.Trigger


def lead_distribute_manually(
    *, lead_id: int, contract_ids: Sequence[int], actor: Any, now: datetime | None = None
) -> DistributionAttempt:
    """Sell a lead to the contracts a manager picked, in order, within the hard limits.

    A contract is refused (with its reason in the attempt) when inactive, when its company
    or group already has the lead, or when the workflow's maximum multiplication or a max
    share count would break; softer findings (caps, area, hours…) are noted, not blocking.
    Not allowed while the lead is in a window (pause, edit or stop it instead).
    """
    now = now or timezone.now()
    started = time.perf_counter()
    ids = list(dict.fromkeys(int(i) for i in contract_ids))
    if not ids:
        raise MarketplaceError("no_contracts", "Pick at least one contract.")
    with transaction.atomic():
        lead = lead_locked(lead_id)
        if lead is None:
            raise MarketplaceError("not_found", "No such lead.")
        if window_open_for_lead(lead_id=lead.pk) is not None:
            raise MarketplaceError(
                "window_open",
                "The lead is in an auto-distribution window: pause, edit or stop it first.",
            )
        lock_contracts(ids)  # before reading usage, so caps shown are exact
        workflow = workflow_for_campaign(campaign_id=lead.campaign_id)
        records = outbound_records(lead_ids=[lead.pk]).get(lead.pk, [])
        rows = contract_snapshots(
            contracts=Contract.objects.filter(id__in=ids),
            now=now,
        )
        by_id = rows.by_id()
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise MarketplaceError("unknown_contract", f"No contract with id {missing[0]}.")
        decision = engine.check_manual_selection(
            # a manager's request: the place cache and the table, never the geocoder
            lead_snapshot(lead, records, lead_points_resolve([lead], geocode=False).get(lead.pk)),
            [by_id[i] for i in ids],
            workflow_snapshot(workflow),
            now,
        )
        created = persist_outbound(
            lead=lead, decision=decision, method=OutboundMethod.MANUAL, now=now, actor=actor
        )
        if created and lead.distribution_state != DistributionState.DONE:
            lead.distribution_state = DistributionState.DONE
            save_lead(lead, ["distribution_state"])
        refused = [line for line in decision.candidates if line.reason is not None]
        histogram = reason_histogram(decision)
        text = (
            describe_decision(decision, rows.names, histogram)
            if created
            else (
                "Refused: "
                + "; ".join(f"{rows.names[line.contract_id][0]}: {line.reason}" for line in refused)
                + "."
            )
        )
        return attempt_record(
            lead=lead,
            trigger=Trigger.MANUAL,
            outcome="distributed" if created else "refused",
            reason=text,
            started=started,
            actor=actor,
            candidates=candidate_lines(decision, rows.names),
            all_candidates=compact_lines(decision),
            rules_tried=rules_tried_lines(decision, workflow, rows.names, histogram),
            now=now,
        )


def lead_cherry_pick(
    *,
    lead_id: int,
    contract_id: int,
    actor: Any,
    price: Decimal | None = None,
    now: datetime | None = None,
) -> OutboundLead:
    """Hand an inbound lead to a contract a manager chose (method cherry_pick).

    It does not count as distributed, toward share counts or toward caps, and distribution
    does not count it either: no status change, no cap check. Only a company (or contract
    group) that already has the lead is refused.
    """
    now = now or timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        lead = lead_locked(lead_id)
        if lead is None:
            raise MarketplaceError("not_found", "No such lead.")
        contract = Contract.objects.select_related("company").filter(pk=contract_id).first()
        if contract is None:
            raise MarketplaceError("unknown_contract", f"No contract with id {contract_id}.")
        held = OutboundLead.objects.filter(lead=lead).filter(
            _company_or_group(contract.company_id, contract.group_id)
        )
        if held.exists():
            raise MarketplaceError("already_received", f"{contract.company} already has this lead.")
        amount = contract.price if price is None else price
        if amount < 0:
            raise MarketplaceError("invalid", "The price cannot be negative.")
        user = actor if getattr(actor, "pk", None) else None
        outbound = OutboundLead(
            lead=lead,
            contract=contract,
            method=OutboundMethod.CHERRY_PICK,
            price=amount,
            created_at=now,
            actor=user,
        )
        to_deliver = outbound_prepare([outbound], now=now)  # webhook / e-mail: pending
        outbound.save(force_insert=True)
        deliveries_on_commit(to_deliver)
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.DISTRIBUTED,
            actor=user,
            message=f"cherry-picked for {contract} ({amount})",
            data={"contracts": [contract.pk], "method": "cherry_pick"},
        )
        attempt_record(
            lead=lead,
            trigger=Trigger.MANUAL,
            outcome="cherry_picked",
            reason=f"Cherry-picked for {contract} ({contract.company}) at {amount}; not "
            "counted as distributed, toward share counts or caps.",
            started=started,
            actor=actor,
            candidates=[
                {
                    "contract": contract.name,
                    "company": contract.company.name,
                    "contract_id": contract.pk,
                    "rank": 1,
                    "rule": None,
                    "reason": None,
                    "note": "cherry_pick",
                    "distance_km": None,
                }
            ],
            now=now,
        )
        return outbound


def _company_or_group(company_id: int, group_id: int | None) -> Q:
    q = Q(contract__company_id=company_id)
    if group_id is not None:
        q |= Q(contract__group_id=group_id)
    return q
