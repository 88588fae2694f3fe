"""The agent offers page in a real browser: an agent sees an offer with its PIN, claims it."""

from __future__ import annotations

import pytest

from distribution.models import Offer
from distribution.services.distribute import lead_distribute
from leads.models import Lead
from tests.acceptance import test_pages_browser as pages
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# chromium as the foundation's page tests launch it
browser, page, sign_in = pages.browser, pages.page, pages.sign_in


def test_an_agent_sees_an_offer_with_its_pin_and_claims_it(live_server, page):
    from playwright.sync_api import expect

    source = SourceFactory(slug="browser-web")
    ava, ben = AgentFactory(email="ava@example.com"), AgentFactory(email="ben@example.com")
    make_rule(pool=make_pool([ava, ben]), sources=[source], strategy="broadcast")
    lead = Lead.objects.create(
        source=source,
        first_name="Pia",
        last_name="Piranha",
        phone="+31 6 5555 0000",
        email="pia@example.com",
    )
    lead_distribute(lead_id=lead.pk)
    lead.refresh_from_db()

    page.goto(f"{live_server.url}/agent/")
    sign_in(page, "ava@example.com", "pw")

    offers = page.locator("#offers")
    expect(offers.get_by_role("heading", name="Offers")).to_be_visible()
    expect(offers.get_by_text(lead.pin)).to_be_visible()
    offers.get_by_role("button", name=f"Claim lead #{lead.pk}").click()

    expect(page.get_by_role("heading", name=f"Lead #{lead.pk} — Pia Piranha")).to_be_visible()
    expect(page.get_by_text("The lead is yours.")).to_be_visible()
    expect(page.get_by_role("link", name="+31 6 5555 0000")).to_have_attribute(
        "href", "tel:+31 6 5555 0000"
    )
    assert Lead.objects.get(pk=lead.pk).owner == ava
    assert Offer.objects.get(lead=lead, agent=ben).status == "withdrawn"

    page.get_by_role("link", name="My leads").first.click()
    expect(page.get_by_text("No open offers.")).to_be_visible()
    expect(page.get_by_role("link", name="Pia Piranha")).to_be_visible()
