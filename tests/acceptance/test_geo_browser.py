"""Issue 12 item 8 in a real browser: a manager sees where a lead sent without coordinates
was placed (the place cache and the offline postal-code table in the admin)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from distribution import services
from tests.acceptance.test_pages_browser import browser, page, sign_in  # noqa: F401
from tests.factories import LeadFactory, UserFactory
from tests.factories.marketplace import AMSTERDAM, ContractFactory, LocationFactory, WorkflowFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DATA = Path(__file__).parents[1] / "marketplace" / "data" / "geonames_postcodes.txt"


def test_a_manager_sees_the_place_a_lead_without_coordinates_was_given(live_server, page):  # noqa: F811
    from playwright.sync_api import expect

    manager = UserFactory(email="morgan@example.com", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    call_command("load_postcodes", str(DATA))
    contract = ContractFactory(name="Amsterdam 40 km", radius_km=40)
    WorkflowFactory(campaign=contract.campaign, rules=[("qs", 1)])
    LocationFactory(company=contract.company, latitude=AMSTERDAM[0], longitude=AMSTERDAM[1])
    lead = LeadFactory(
        campaign=contract.campaign, postcode="1011 AB", city="Amsterdam", country="NL"
    )
    services.lead_dispatch(lead_id=lead.pk, trigger="arrival")

    page.goto(f"{live_server.url}/admin/")
    sign_in(page, "morgan@example.com", "pw")
    page.get_by_role("link", name="Geocoded places").click()
    rows = page.locator("#result_list")
    expect(rows).to_contain_text("1011AB")
    expect(rows).to_contain_text("amsterdam")
    expect(rows).to_contain_text("Postal-code table")

    page.goto(f"{live_server.url}/admin/distribution/postalcode/?q=1011")
    expect(page.locator("#result_list")).to_contain_text("Noord-Holland")
    expect(page.locator("#result_list")).to_contain_text("52.3731")
