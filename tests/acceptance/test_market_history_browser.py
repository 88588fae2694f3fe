"""A sold lead's page in a real browser (issue 12, item 9): a manager signs in and reads the
marketplace history like the routing one — contract and company per candidate, the rule
that chose the buyer, each reason in words and the delivery in the same timeline."""

from __future__ import annotations

import pytest

from distribution import services
from tests.acceptance import test_pages_browser as pages
from tests.factories import CampaignFactory, UserFactory
from tests.factories.marketplace import (
    GRONINGEN,
    CompanyFactory,
    ContractFactory,
    LocationFactory,
    MarketplaceLeadFactory,
    WorkflowFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
browser, page = pages.browser, pages.page


def test_a_manager_reads_a_sold_leads_history_in_words(live_server, page):
    from django.contrib.auth.models import Group
    from playwright.sync_api import expect

    manager = UserFactory(email="morgan@example.com", is_staff=True)  # a manager, not an admin
    manager.groups.add(Group.objects.get(name="Managers"))
    solar = CampaignFactory(slug="solar-browser", name="Solar panels")
    WorkflowFactory(campaign=solar, rules=[("qs", 1)], max_multiplication=1)
    ContractFactory(
        name="SunPower premium",
        company=CompanyFactory(name="SunPower Amsterdam"),
        campaign=solar,
        quality_score=9,
        price=45,
    )
    north = CompanyFactory(name="Noord Energie")
    LocationFactory(company=north, latitude=GRONINGEN[0], longitude=GRONINGEN[1])
    ContractFactory(name="Noord solar", company=north, campaign=solar, radius_km=25)
    lead = MarketplaceLeadFactory(campaign=solar, first_name="Zelda")
    services.lead_dispatch(lead_id=lead.pk, trigger="arrival")

    page.goto(f"{live_server.url}/admin/leads/lead/{lead.pk}/change/")
    pages.sign_in(page, "morgan@example.com", "pw")

    history = page.locator("#distribution_attempts-group")
    expect(history).to_contain_text("SunPower premium")
    expect(history).to_contain_text("SunPower Amsterdam")
    expect(history).to_contain_text("Noord Energie")
    expect(history).to_contain_text("✔ 1. qs × 1 (quality score, take 1): chose SunPower premium")
    expect(history).to_contain_text("✔ chosen at 45.00 · delivered")
    expect(history).to_contain_text("out of service area (147 km > 25 km radius)")
    expect(history).not_to_contain_text("out_of_service_area")

    page.goto(f"{live_server.url}/admin/distribution/outboundlead/distribute/{lead.pk}/")
    expect(page.get_by_text("Delivery to SunPower premium (SunPower Amsterdam)")).to_be_visible()
    page.locator("details.mp-attempt > summary").click()
    expect(page.locator("details.mp-attempt")).to_contain_text(
        "out of service area (147 km > 25 km radius)"
    )
