"""The public side: `GET /api/v1/leads/{id}` shows the outbound leads; the arrival path and
`distribute_pending` send campaign-with-workflow leads to the marketplace, others to
routing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from distribution.models import DistributionAttempt
from leads.models import Lead

from .conftest import sold_to

pytestmark = pytest.mark.django_db


def test_lead_document_lists_outbound_leads(
    api, source, workflow, contract, new_lead, django_capture_on_commit_callbacks, manager
):
    workflow(rules=[("qs", 1)])
    buyer = contract(name="Solar buyer", price=Decimal("12.50"))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/leads",
            {
                "first_name": "Ann",
                "email": "ann@example.com",
                "campaign": buyer.campaign.slug,
                "latitude": 52.37,
                "longitude": 4.90,
            },
            token=source.plain_token,
        )
    assert response.status_code == 201
    lead_id = response.json()["id"]
    from distribution import services

    services.lead_cherry_pick(
        lead_id=lead_id, contract_id=contract(name="Deal").pk, actor=manager, price=Decimal("7")
    )
    body = api.get(f"/api/v1/leads/{lead_id}", token=source.plain_token).json()
    assert body["status"] == "distributed"
    assert body["outbound"] == [
        {
            "contract": "Solar buyer",
            "company": buyer.company.name,
            "method": "auto",
            "price": "12.50",
            "status": "delivered",
            "reason": None,
        },
        {
            "contract": "Deal",
            "company": body["outbound"][1]["company"],
            "method": "cherry_pick",
            "price": "7.00",
            "status": "delivered",
            "reason": None,
        },
    ]


def test_outbound_for_lead_is_one_query(workflow, contract, new_lead, django_assert_num_queries):
    from distribution.selectors import outbound_for_lead

    workflow(rules=[("qs", 5)])
    for _ in range(5):
        contract()
    lead = new_lead()
    from distribution import services

    services.lead_dispatch(lead_id=lead.pk)
    with django_assert_num_queries(1):
        assert len(outbound_for_lead(lead)) == 5


def test_arrival_dispatches_workflow_campaigns_to_the_marketplace(workflow, contract, new_lead):
    from distribution import services

    workflow(rules=[("qs", 1)])
    contract()
    marketplace_lead = new_lead()
    routed_lead = new_lead(campaign=None)
    assert services.lead_dispatch(lead_id=marketplace_lead.pk).outcome == "distributed"
    routed = services.lead_dispatch(lead_id=routed_lead.pk)
    assert routed is not None and routed.outcome != "distributed"
    assert not sold_to(routed_lead)
    assert services.lead_dispatch(lead_id=marketplace_lead.pk) is None  # idempotent


def test_distribute_pending_sells_marketplace_leads_too(workflow, contract, new_lead):
    workflow(rules=[("qs", 2)])
    contract()
    contract()
    leads = [new_lead() for _ in range(3)]
    other = new_lead(campaign=None)
    call_command("distribute_pending", "--quiet")
    for lead in leads:
        assert len(sold_to(lead)) == 2
        assert Lead.objects.get(pk=lead.pk).distribution_state == "done"
    assert Lead.objects.get(pk=other.pk).distribution_state != "pending"
    assert DistributionAttempt.objects.filter(trigger="command").count() == 4
