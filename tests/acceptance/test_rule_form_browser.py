"""The rule form in a real browser: the initial activity's choices follow the initial status
(seed 003: "the list of initial activities will reflect the status selection")."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from distribution.models import Rule
from tests.acceptance import test_pages_browser as pages
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
browser, page = pages.browser, pages.page


def _signed_in_as_manager(page: Any, base_url: str) -> None:
    """The admin session of a manager, handed to the browser (whichever login page is used)."""
    client = Client()
    client.force_login(UserFactory(email="morgan@example.com", is_staff=True, is_superuser=True))
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": base_url}])


def _values(select: Any) -> list[str]:
    return select.locator("option").evaluate_all("options => options.map(o => o.value)")


def test_the_initial_activities_follow_the_chosen_initial_status(live_server, page):
    from playwright.sync_api import expect

    _signed_in_as_manager(page, live_server.url)
    page.goto(f"{live_server.url}/admin/distribution/rule/add/")
    status, activity = page.locator("#id_initial_status"), page.locator("#id_initial_activity")
    expect(status).to_have_value("assigned")
    assert _values(activity) == ["", "new_lead", "note"]

    status.select_option("contacted")
    assert _values(activity) == ["", "contact_made", "email", "meeting", "note"]
    activity.select_option("meeting")
    status.select_option("qualified")  # a meeting fits a qualified lead too: kept
    assert _values(activity) == ["", "qualified", "meeting", "note"]
    expect(activity).to_have_value("meeting")
    status.select_option("assigned")  # it does not fit: cleared, the user chooses again
    expect(activity).to_have_value("")

    status.select_option("contacted")
    activity.select_option("contact_made")
    page.locator("#id_name").fill("Phone transfers")
    page.locator("#id_strategy").select_option("manual")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("Phone transfers")
    rule = Rule.objects.get(name="Phone transfers")
    assert (rule.initial_status, rule.initial_activity) == ("contacted", "contact_made")
