"""The organisation's business hours and a pool's own caps, set by a manager in a real
browser (Debian chromium driven by Playwright)."""

from __future__ import annotations

import pytest

from distribution.models import Pool
from tests.acceptance.test_pages_browser import browser, page, sign_in  # noqa: F401 - fixtures
from tests.factories import UserFactory
from tests.routing.conftest import make_schedule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _admin_sign_in(live_server, page) -> None:  # noqa: F811 - the page fixture
    """A manager (the Managers group, not a superuser) signs in on the one login page."""
    from django.contrib.auth.models import Group

    manager = UserFactory(email="morgan@example.com", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    page.goto(f"{live_server.url}/admin/")
    sign_in(page, "morgan@example.com", "pw")


def test_a_manager_sets_the_organisations_business_hours_and_a_pools_caps(
    live_server,
    page,  # noqa: F811 - the fixture
):
    from playwright.sync_api import expect

    make_schedule("office")
    Pool.objects.create(name="team")
    _admin_sign_in(live_server, page)

    page.get_by_role("link", name="Organisation").click()
    expect(page.get_by_role("heading", name="Change organisation")).to_be_visible()
    page.get_by_label("Business hours").select_option(label="office")
    page.get_by_label("Ring all after hours").select_option("unassigned")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    from distribution.models import Organisation

    assert Organisation.objects.get().business_hours.name == "office"

    page.goto(f"{live_server.url}/admin/distribution/pool/")
    page.get_by_role("link", name="team").click()
    page.get_by_label("Cap day").fill("25")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Pool.objects.get(name="team").cap_day == 25
