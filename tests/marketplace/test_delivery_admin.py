"""The delivery settings and the delivery log in the admin (issue 12 items 1 and 4)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from distribution.models import DeliveryAttempt, OutboundLead

from .conftest import arrive
from .test_delivery import FakeBuyer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Any, manager: Any) -> Any:
    client.force_login(manager)
    return client


@pytest.fixture
def buyer(settings: Any) -> Any:
    settings.DELIVERY_ALLOW_PRIVATE_NETWORKS = True
    server = FakeBuyer()
    yield server
    server.stop()


def _sold(workflow: Any, contract: Any, new_lead: Any, capture: Any, url: str) -> OutboundLead:
    workflow(rules=[("qs", 5)], mode="on_arrival")
    c = contract(name="Hook buyer", delivery_method="webhook", delivery_url=url)
    lead = new_lead(first_name="Marie")
    with capture(execute=True):
        arrive(lead)
    return OutboundLead.objects.get(lead=lead, contract=c)


def test_outbound_page_lists_each_attempt_with_request_and_answer(
    staff: Any,
    buyer: FakeBuyer,
    workflow: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    buyer.script = [(409, {"error": "duplicate lead"}, 0)]
    outbound = _sold(workflow, contract, new_lead, django_capture_on_commit_callbacks, buyer.url)
    page = staff.get(reverse("admin:distribution_outboundlead_change", args=[outbound.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "delivery attempts" in text.lower()
    assert "http_409" in text and "duplicate lead" in text and "Marie" in text
    assert "Rejected by the buyer" in text

    lead_page = staff.get(reverse("admin:leads_lead_change", args=[outbound.lead_id]))
    assert "deliveries to buyers" in lead_page.content.decode().lower()
    assert "http_409" in lead_page.content.decode()


def test_delivery_attempts_list_filters_by_outcome(
    staff: Any,
    buyer: FakeBuyer,
    workflow: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    buyer.script = [(400, "no", 0)]
    outbound = _sold(workflow, contract, new_lead, django_capture_on_commit_callbacks, buyer.url)
    url = reverse("admin:distribution_deliveryattempt_changelist")
    rejected = staff.get(url, {"outcome": "rejected"}).content.decode()
    delivered = staff.get(url, {"outcome": "delivered"}).content.decode()
    assert DeliveryAttempt.objects.get().outbound_id == outbound.pk
    assert "http_400" in rejected and "http_400" not in delivered


def test_contract_page_has_the_delivery_fieldset_and_a_test_button(
    staff: Any, buyer: FakeBuyer, contract: Any
) -> None:
    c = contract(
        name="Hook buyer",
        delivery_method="webhook",
        delivery_url=buyer.url,
        delivery_secret="s3cret",
    )
    page = staff.get(reverse("admin:crm_contract_change", args=[c.pk])).content.decode()
    assert "Delivery to the buyer" in page and 'name="delivery_url"' in page
    test_url = reverse("admin:crm_contract_test_delivery", args=[c.pk])
    assert test_url in page
    buyer.script = [(200, {"status": "accepted"}, 0)]
    shown = staff.post(test_url).content.decode()
    assert "Outcome: delivered" in shown and "HTTP 200" in shown
    assert "Leadrouter-Signature" in shown and "accepted" in shown
    assert len(buyer.requests) == 1 and not DeliveryAttempt.objects.exists()


def test_test_button_on_a_portal_contract_says_there_is_nothing_to_send(
    staff: Any, contract: Any
) -> None:
    c = contract()
    shown = staff.post(
        reverse("admin:crm_contract_test_delivery", args=[c.pk]), follow=True
    ).content.decode()
    assert "portal contract sends nothing" in shown
