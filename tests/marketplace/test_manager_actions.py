"""What managers do by hand: manual distribution with explained refusals, cherry-picking,
returns (approved returns credit caps and budgets), pausing contracts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from distribution import services
from distribution.errors import MarketplaceError
from distribution.models import DistributionAttempt, OutboundLead
from tests.factories.marketplace import ContractGroupFactory, LocationFactory

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db


def test_manual_distribution_explains_each_refusal_and_notes_soft_findings(
    workflow, contract, new_lead, manager
):
    workflow(rules=[("qs", 1)], max_multiplication=5)
    exclusive = contract(name="exclusive", max_share_count=1)
    inactive = contract(name="inactive", active=False)
    capped = contract(name="capped", cap_day=0)
    far = contract(name="far", radius_km=1)
    LocationFactory(company=far.company, latitude=40.0, longitude=-74.0)
    lead = new_lead()
    attempt = services.lead_distribute_manually(
        lead_id=lead.pk, contract_ids=[capped.pk, far.pk, inactive.pk, exclusive.pk], actor=manager
    )
    lines = {c["contract"]: c for c in attempt.candidates}
    assert sold_to(lead, method="manual") == ["capped", "far"]
    assert (lines["capped"]["reason"], lines["capped"]["note"]) == (None, "cap_reached")
    assert (lines["far"]["reason"], lines["far"]["note"]) == (None, "out_of_service_area")
    assert lines["inactive"]["reason"] == "inactive"
    assert lines["exclusive"]["reason"] == "share_count_exceeded"  # 3rd outbound lead


def test_manual_distribution_with_nothing_accepted_is_recorded_as_refused(
    contract, new_lead, manager
):
    lead = new_lead()
    held = contract(name="held")
    services.lead_cherry_pick(lead_id=lead.pk, contract_id=held.pk, actor=manager)
    attempt = services.lead_distribute_manually(
        lead_id=lead.pk, contract_ids=[held.pk], actor=manager
    )
    assert attempt.outcome == "refused" and "already_received" in attempt.reason
    assert DistributionAttempt.objects.filter(lead=lead, outcome="refused").exists()


def test_manual_distribution_rejects_unknown_contracts(new_lead, manager):
    with pytest.raises(MarketplaceError) as refused:
        services.lead_distribute_manually(
            lead_id=new_lead().pk, contract_ids=[999_999], actor=manager
        )
    assert refused.value.code == "unknown_contract"


def test_a_contract_group_never_gets_the_same_lead_twice(workflow, contract, new_lead):
    workflow(rules=[("qs", 5)])
    group = ContractGroupFactory()
    contract(name="group-a", group=group, quality_score=9)
    contract(name="group-b", group=group, quality_score=8)
    contract(name="other", quality_score=1)
    lead = new_lead()
    attempt = arrive(lead)
    assert sold_to(lead) == ["group-a", "other"]
    assert {c["contract"]: c["reason"] for c in attempt.candidates}["group-b"] == (
        "company_already_selected"
    )


def test_cherry_pick_refuses_a_company_that_already_has_the_lead(contract, new_lead, manager):
    lead = new_lead()
    first = contract()
    services.lead_cherry_pick(lead_id=lead.pk, contract_id=first.pk, actor=manager)
    sister = contract(company=first.company)
    with pytest.raises(MarketplaceError) as refused:
        services.lead_cherry_pick(lead_id=lead.pk, contract_id=sister.pk, actor=manager)
    assert refused.value.code == "already_received"


def test_cherry_pick_takes_a_negotiated_price(contract, new_lead, manager):
    lead = new_lead()
    picked = services.lead_cherry_pick(
        lead_id=lead.pk, contract_id=contract().pk, actor=manager, price=Decimal("99.50")
    )
    assert picked.price == Decimal("99.50")
    attempt = DistributionAttempt.objects.get(lead=lead)
    assert (attempt.outcome, attempt.actor) == ("cherry_picked", manager)


def test_an_approved_return_credits_the_buyers_cap_and_budget(
    workflow, contract, new_lead, manager
):
    workflow(rules=[("qs", 1)])
    contract(name="capped", cap_day=1, budget_month=Decimal("10"), price=Decimal("10"))
    first = new_lead()
    arrive(first)
    assert arrive(new_lead()).outcome == "no_eligible_contracts"  # cap and budget used
    outbound = OutboundLead.objects.get(lead=first)
    services.outbound_return_request(outbound_id=outbound.pk, reason="wrong number")
    assert arrive(new_lead()).outcome == "no_eligible_contracts"  # requested ≠ approved
    services.outbound_return_approve(outbound_id=outbound.pk, actor=manager, note="checked")
    again = new_lead()
    assert arrive(again).outcome == "distributed"
    outbound.refresh_from_db()
    assert (outbound.return_status, outbound.return_decided_by) == ("approved", manager)


def test_a_denied_return_keeps_counting(workflow, contract, new_lead, manager):
    workflow(rules=[("qs", 1)])
    contract(cap_day=1)
    first = new_lead()
    arrive(first)
    outbound = OutboundLead.objects.get(lead=first)
    services.outbound_return_request(outbound_id=outbound.pk, reason="duplicate")
    services.outbound_return_deny(outbound_id=outbound.pk, actor=manager)
    assert arrive(new_lead()).outcome == "no_eligible_contracts"
    with pytest.raises(MarketplaceError) as twice:
        services.outbound_return_approve(outbound_id=outbound.pk, actor=manager)
    assert twice.value.code == "no_return_requested"


def test_a_return_needs_a_reason(contract, new_lead, manager):
    picked = services.lead_cherry_pick(
        lead_id=new_lead().pk, contract_id=contract().pk, actor=manager
    )
    with pytest.raises(MarketplaceError) as refused:
        services.outbound_return_request(outbound_id=picked.pk, reason="  ")
    assert refused.value.code == "reason_required"


def test_a_paused_contract_gets_no_leads_until_resumed(workflow, contract, new_lead):
    workflow(rules=[("qs", 1)])
    buyer = contract()
    services.contract_pause(contract_id=buyer.pk)
    attempt = arrive(new_lead())
    assert attempt.candidates[0]["reason"] == "paused"
    services.contract_resume(contract_id=buyer.pk)
    assert arrive(new_lead()).outcome == "distributed"


def test_lead_requirements_of_a_contract(workflow, contract, new_lead):
    """Maximum lead age, minimum lead score (attributes.score) and delivery hours."""
    from datetime import UTC, datetime, time, timedelta

    import time_machine

    from tests.factories.marketplace import DeliveryIntervalFactory

    workflow(rules=[("qs", 5)])
    contract(name="fresh-only", max_lead_age=timedelta(hours=1))
    contract(name="scored", min_lead_score=50)
    office = contract(name="office-hours")
    DeliveryIntervalFactory(contract=office, weekday=0, start=time(9), end=time(17))
    monday_night = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)
    with time_machine.travel(monday_night, tick=False):
        old = new_lead(created_at=monday_night - timedelta(hours=2), attributes={"score": 80})
        attempt = arrive(old)
    reasons = {c["contract"]: c["reason"] for c in attempt.candidates}
    assert reasons == {
        "scored": None,
        "fresh-only": "lead_too_old",
        "office-hours": "outside_delivery_hours",
    }
    with time_machine.travel(monday_night.replace(hour=10), tick=False):
        young = new_lead(attributes={"score": "12"})
        arrive(young)
    assert sorted(sold_to(young)) == ["fresh-only", "office-hours"]


def test_selling_an_agents_lead_by_hand_keeps_its_sales_status(contract, manager, agent):
    from tests.factories import LeadFactory

    lead = LeadFactory(status="working", distribution_state="done", owner=agent)
    attempt = services.lead_distribute_manually(
        lead_id=lead.pk, contract_ids=[contract().pk], actor=manager
    )
    assert attempt.outcome == "distributed"
    lead.refresh_from_db()
    assert (lead.status, lead.owner) == ("working", agent)
