"""The managers' marketplace screens in the admin: each renders and calls its service."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from distribution.models import DistributionWindow, OutboundLead

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, manager):
    client.force_login(manager)
    return client


def test_manual_distribution_page_explains_contracts_and_shows_history(
    staff, workflow, contract, new_lead
):
    workflow(rules=[("qs", 1)])
    contract(name="Best buyer", quality_score=9)
    contract(name="Paused buyer", paused=True)
    lead = new_lead()
    arrive(lead)
    page = staff.get(reverse("admin:distribution_outboundlead_distribute", args=[lead.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Best buyer" in text and "paused" in text
    assert "Distribution history" in text and "Lead arrived" in text


def test_manual_distribution_post_sells_to_the_picked_contracts(staff, contract, new_lead):
    buyer = contract(name="Picked")
    lead = new_lead(campaign=None)
    url = reverse("admin:distribution_outboundlead_distribute", args=[lead.pk])
    response = staff.post(url, {"contracts": [str(buyer.pk)]})
    assert response.status_code == 302
    assert sold_to(lead, method="manual") == ["Picked"]
    follow = staff.get(url)
    assert "Picked" in follow.content.decode()


def test_hopper_lists_leads_and_cherry_pick_form_hands_one_over(staff, contract, new_lead):
    buyer = contract(name="Phone deal")
    lead = new_lead(first_name="Zelda")
    hopper = staff.get(reverse("admin:distribution_outboundlead_hopper"), {"q": "Zelda"})
    assert hopper.status_code == 200 and str(lead) in hopper.content.decode()
    url = reverse("admin:distribution_outboundlead_cherry_pick", args=[lead.pk])
    assert staff.get(url).status_code == 200
    response = staff.post(url, {"contract": buyer.pk, "price": "15"})
    assert response.status_code == 302
    outbound = OutboundLead.objects.get(lead=lead)
    assert (outbound.method, outbound.price) == ("cherry_pick", Decimal("15.00"))


def test_window_screens_pause_edit_stop_and_add(staff, workflow, contract, new_lead):
    workflow(rules=[("qs", 1)], mode="window")
    lead = new_lead()
    arrive(lead)
    window = DistributionWindow.objects.get(lead=lead)
    verb = "admin:distribution_distributionwindow_verb"
    assert staff.post(reverse(verb, args=[window.pk, "pause"])).status_code == 302
    window.refresh_from_db()
    assert window.status == "paused"
    edit = reverse("admin:distribution_distributionwindow_edit", args=[window.pk])
    assert staff.get(edit).status_code == 200
    ends = (window.ends_at + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert staff.post(edit, {"ends_at": ends, "every": "30m"}).status_code == 302
    window.refresh_from_db()
    assert window.every == timedelta(minutes=30)
    assert staff.post(reverse(verb, args=[window.pk, "stop"])).status_code == 302
    window.refresh_from_db()
    assert window.status == "stopped"
    contract(name="later")
    add = reverse("admin:distribution_distributionwindow_add_to_lead", args=[lead.pk])
    assert staff.get(add).status_code == 200
    assert staff.post(add, {"duration": "1h", "every": ""}).status_code == 302
    assert DistributionWindow.objects.filter(lead=lead, status="active").exists()
    assert sold_to(lead) == ["later"]


def test_window_actions_and_return_decisions_from_the_lists(staff, workflow, contract, new_lead):
    workflow(rules=[("qs", 1)], mode="window")
    contract()
    lead, waiting = new_lead(), new_lead(campaign=None)
    arrive(lead)
    window = DistributionWindow.objects.get(lead=lead)
    changelist = reverse("admin:distribution_distributionwindow_changelist")
    assert staff.get(changelist).status_code == 200
    staff.post(changelist, {"action": "stop_windows", "_selected_action": [window.pk]})
    window.refresh_from_db()
    assert window.status == "stopped"
    outbound = OutboundLead.objects.get(lead=lead)
    return_url = reverse("admin:distribution_outboundlead_return", args=[outbound.pk])
    assert staff.post(return_url, {"reason": "not interested"}).status_code == 302
    outbound_list = reverse("admin:distribution_outboundlead_changelist")
    assert staff.get(outbound_list).status_code == 200
    staff.post(outbound_list, {"action": "approve_returns", "_selected_action": [outbound.pk]})
    outbound.refresh_from_db()
    assert outbound.return_status == "approved"
    turnover = staff.get(reverse("admin:distribution_outboundlead_turnover"))
    assert turnover.status_code == 200 and outbound.contract.name in turnover.content.decode()
    assert waiting.pk


def test_model_admin_pages_render(staff, workflow, contract):
    flow = workflow(rules=[("qs", 2), ("distance", 1)])
    buyer = contract()
    for name, args in [
        ("admin:crm_company_changelist", []),
        ("admin:crm_company_change", [buyer.company.pk]),
        ("admin:crm_contract_changelist", []),
        ("admin:crm_contract_change", [buyer.pk]),
        ("admin:crm_contract_add", []),
        ("admin:distribution_workflow_changelist", []),
        ("admin:distribution_workflow_change", [flow.pk]),
    ]:
        assert staff.get(reverse(name, args=args)).status_code == 200, name


def test_contract_pause_action_and_lead_actions(staff, contract, new_lead):
    buyer = contract()
    staff.post(
        reverse("admin:crm_contract_changelist"),
        {"action": "pause_contracts", "_selected_action": [buyer.pk]},
    )
    buyer.refresh_from_db()
    assert buyer.paused
    lead = new_lead()
    response = staff.post(
        reverse("admin:leads_lead_changelist"),
        {"action": "lead_distribute_action", "_selected_action": [lead.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:distribution_outboundlead_distribute", args=[lead.pk]
    )


def test_approving_a_return_reports_it_approved_and_nothing_skipped(
    staff, workflow, contract, new_lead
):
    workflow(rules=[("qs", 2)])
    contract(name="one", max_share_count=2)
    contract(name="two", max_share_count=2)
    lead = new_lead()
    arrive(lead)
    requested, untouched = OutboundLead.objects.filter(lead=lead).order_by("pk")
    return_url = reverse("admin:distribution_outboundlead_return", args=[requested.pk])
    assert staff.post(return_url, {"reason": "not interested"}).status_code == 302
    outbound_list = reverse("admin:distribution_outboundlead_changelist")
    page = staff.post(
        outbound_list,
        {"action": "approve_returns", "_selected_action": [requested.pk, untouched.pk]},
        follow=True,
    ).content.decode()
    assert "1 outbound lead had no return waiting." in page  # the one never returned
    staff.post(return_url.replace(str(requested.pk), str(untouched.pk)), {"reason": "dup"})
    page = staff.post(
        outbound_list,
        {"action": "approve_returns", "_selected_action": [untouched.pk]},
        follow=True,
    ).content.decode()
    assert "no return waiting" not in page
