"""A manager sends a test lead from a webhook contract's page and reads the buyer's answer
(issue 12 item 1), in a real browser against a fake buyer on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.acceptance.test_pages_browser import browser, page, sign_in
from tests.factories import UserFactory
from tests.factories.marketplace import ContractFactory
from tests.marketplace.test_delivery import FakeBuyer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["browser", "page"]


@pytest.fixture
def buyer(settings: Any) -> Iterator[FakeBuyer]:
    settings.DELIVERY_ALLOW_PRIVATE_NETWORKS = True
    server = FakeBuyer()
    yield server
    server.stop()


def test_a_manager_sends_a_test_lead_and_sees_the_request_and_answer(
    live_server: Any, page: Any, buyer: FakeBuyer
) -> None:
    from playwright.sync_api import expect

    UserFactory(email="morgan@example.com", is_staff=True, is_superuser=True)
    contract = ContractFactory(
        name="Hook buyer",
        delivery_method="webhook",
        delivery_url=buyer.url,
        delivery_secret="s3cret",
    )
    buyer.script = [(200, {"status": "accepted", "crm_id": "B-77"}, 0)]

    page.goto(f"{live_server.url}/admin/crm/contract/{contract.pk}/change/")
    sign_in(page, "morgan@example.com", "pw")
    expect(page.get_by_role("heading", name="Delivery to the buyer")).to_be_visible()
    page.get_by_role("link", name="Send a test lead").click()
    page.locator("#test-delivery-send").click()

    expect(page.locator("#test-delivery-outcome")).to_contain_text("delivered")
    expect(page.locator("#test-delivery-outcome")).to_contain_text("HTTP 200")
    expect(page.locator("#test-delivery-request")).to_contain_text("Leadrouter-Signature")
    expect(page.locator("#test-delivery-answer")).to_contain_text("B-77")
    assert len(buyer.requests) == 1
