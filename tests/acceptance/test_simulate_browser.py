"""A rule's page in a real browser: the manager edits the rule, presses Simulate, reads the
replay of the form as edited in a page beside it, and nothing is saved."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from distribution.models import Assignment, DistributionAttempt, Rule
from leads.models import Lead
from tests.acceptance import test_pages_browser as pages
from tests.factories import AgentFactory, LeadFactory, SourceFactory, UserFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
browser, page = pages.browser, pages.page


def test_a_manager_simulates_the_unsaved_rule_from_its_page(live_server, page):
    from django.contrib.auth.models import Group
    from playwright.sync_api import expect

    manager = UserFactory(email="morgan@example.com", is_staff=True)  # a manager, not an admin
    manager.groups.add(Group.objects.get(name="Managers"))
    source = SourceFactory(slug="browser-sim")
    ava, ben = AgentFactory(email="ava@example.com"), AgentFactory(email="ben@example.com")
    rule = make_rule(pool=make_pool([ava, ben]), sources=[source])
    for i in range(3):  # leads Ava really received
        LeadFactory(
            source=source,
            owner=ava,
            assigned=True,
            rule=rule,
            created_at=timezone.now() - dt.timedelta(hours=1 + i),
        )
    attempts = DistributionAttempt.objects.count()
    assignments = Assignment.objects.count()

    page.goto(f"{live_server.url}/admin/distribution/rule/{rule.pk}/change/")
    pages.sign_in(page, "morgan@example.com", "pw")
    expect(page.get_by_role("button", name="Simulate")).to_be_visible()

    # edit the form without saving: the Lead Assignment queue instead of round robin
    page.locator("#id_strategy").select_option("manual")
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Simulate").click()
    result = opened.value
    result.wait_for_load_state()
    expect(result.locator("#simulate-edited")).to_contain_text("not saved")
    expect(result.locator("#simulate-differing")).to_contain_text("3 of 3 lead(s)")
    totals = result.locator("#simulate-totals")
    expect(totals.get_by_role("row", name="ava@example.com 0 3")).to_be_visible()
    expect(result.locator("#simulate-decisions")).to_contain_text("≠ differs")

    # the rule page still holds the edit, and nothing was saved or written
    expect(page.locator("#id_strategy")).to_have_value("manual")
    assert Rule.objects.get(pk=rule.pk).strategy == "round_robin"
    assert DistributionAttempt.objects.count() == attempts
    assert Assignment.objects.count() == assignments
    assert set(Lead.objects.values_list("owner", flat=True)) == {ava.pk}
