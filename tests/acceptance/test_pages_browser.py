"""The server-rendered pages in a real browser (Debian chromium driven by Playwright)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from distribution.models import Offer
from leads.models import Activity
from tests.conftest import CHROMIUM
from tests.factories import AgentFactory, LeadFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the tests' own ORM
    # calls are plain synchronous ones, so let Django allow them while the browser is up.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Any, username: str, password: str) -> None:
    page.get_by_label("Username or e-mail").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_an_anonymous_visit_lands_on_the_login_page(live_server, page):
    page.goto(f"{live_server.url}/agent/")

    assert "/accounts/login/" in page.url
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_an_agent_signs_in_opens_a_lead_and_logs_an_activity(live_server, page):
    from playwright.sync_api import expect

    agent = AgentFactory(email="ava@example.com")
    lead = LeadFactory(first_name="Mara", last_name="Mulder", owner=agent, assigned=True)
    LeadFactory(first_name="Theo", last_name="Theirs", owner=AgentFactory(), assigned=True)

    page.goto(f"{live_server.url}/agent/")
    sign_in(page, "ava@example.com", "pw")

    expect(page.get_by_role("heading", name="My leads")).to_be_visible()
    expect(page.get_by_role("link", name="Mara Mulder")).to_be_visible()
    expect(page.get_by_text("Theo Theirs")).to_have_count(0)

    page.get_by_role("link", name="Mara Mulder").click()
    expect(page.get_by_role("heading", name=f"Lead #{lead.pk} — Mara Mulder")).to_be_visible()
    expect(page.get_by_text("Nothing logged yet.")).to_be_visible()

    page.get_by_label("Kind").select_option("contact_made")
    page.get_by_role("textbox", name="Note").fill("Wants a quote for 12 panels")
    page.get_by_role("button", name="Log activity").click()

    expect(page.get_by_role("status")).to_have_text("Activity logged.")
    activity = page.locator("ul.activities li").first
    expect(activity).to_contain_text("Contact made")
    expect(activity).to_contain_text("Wants a quote for 12 panels")
    assert Activity.objects.get(lead=lead).kind == "contact_made"


def test_a_manager_signs_in_to_the_admin_and_sees_the_leads(live_server, page):
    from playwright.sync_api import expect

    UserFactory(email="morgan@example.com", is_staff=True, is_superuser=True)
    LeadFactory(first_name="Mara", last_name="Mulder", unassigned=True)

    page.goto(f"{live_server.url}/admin/")
    sign_in(page, "morgan@example.com", "pw")  # the one login page, back to the admin

    page.locator("#leads-lead").get_by_role("link", name="Leads").click()

    expect(page.get_by_role("heading", name="Select lead to change")).to_be_visible()
    expect(page.get_by_role("link", name="Mara Mulder")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("Unassigned")


def test_a_manager_sees_the_speed_to_lead_chart_drawn_on_the_dashboard(live_server, page):
    from playwright.sync_api import expect

    UserFactory(email="morgan@example.com", is_staff=True, is_superuser=True)
    arrived = timezone.now() - dt.timedelta(hours=1)
    for wait in (3, 9):
        lead = LeadFactory(created_at=arrived, status="offered", distribution_state="active")
        Offer.objects.create(
            lead=lead, agent=AgentFactory(), created_at=arrived + dt.timedelta(seconds=wait)
        )

    page.goto(f"{live_server.url}/admin/dashboard/")
    sign_in(page, "morgan@example.com", "pw")

    expect(page.locator("#speed-to-lead")).to_contain_text("Speed to lead")
    expect(page.locator("#speed-to-lead table")).to_contain_text("6.0")  # p50 of 3 s and 9 s
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    # Chart.js drew on the canvas: it holds a chart and some painted (non-transparent) pixels
    drawn = page.wait_for_function(
        """() => {
            const canvas = document.getElementById("chart-speed");
            if (!window.Chart || !Chart.getChart(canvas) || !canvas.width) return false;
            const {width, height} = canvas;
            const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) return true;
            return false;
        }"""
    )
    assert drawn.json_value() is True


def test_staff_without_permissions_are_refused_on_the_cherry_pick_screen(live_server, page):
    """Signed in to the admin, a staff user without the permission to sell sees a refusal
    on the cherry-pick screen, and no lead is sold; a manager gets the form."""
    from django.contrib.auth.models import Group
    from playwright.sync_api import expect

    from distribution.models import OutboundLead
    from tests.factories.marketplace import ContractFactory, MarketplaceLeadFactory

    contract = ContractFactory(name="Phone deal")
    lead = MarketplaceLeadFactory(campaign=contract.campaign, first_name="Zelda")
    UserFactory(email="viewer@example.com", is_staff=True)
    manager = UserFactory(email="morgan@example.com", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    url = f"{live_server.url}/admin/distribution/outboundlead/cherry-pick/{lead.pk}/"

    page.goto(url)
    sign_in(page, "viewer@example.com", "pw")

    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("distribution.add_outboundlead")
    expect(page.get_by_role("button", name="Cherry-pick")).to_have_count(0)
    assert not OutboundLead.objects.exists()

    page.get_by_role("link", name="Sign in as someone else").click()
    sign_in(page, "morgan@example.com", "pw")
    assert page.url.endswith("/admin/")  # a manager lands on the admin home
    expect(page.get_by_role("link", name="Lead Assignment queue")).to_be_visible()
    page.goto(url)
    expect(page.get_by_role("heading", name=f"Cherry-pick lead {lead}")).to_be_visible()


def test_a_buyer_signs_in_sees_the_bought_lead_returns_it_and_a_manager_approves(live_server, page):
    """DESIGN §4 "The buyer's side": the buyer lands on /buyer/ from the shared login, sees
    only their company's lead, returns it with a reason; a manager approves the return in
    the admin, and the buyer sees it returned."""
    from django.contrib.auth.models import Group
    from playwright.sync_api import expect

    from distribution.models import OutboundLead
    from tests.factories.marketplace import (
        BuyerFactory,
        CompanyFactory,
        ContractFactory,
        MarketplaceLeadFactory,
        OutboundLeadFactory,
    )

    company = CompanyFactory(name="Zonnig")
    contract = ContractFactory(company=company, name="Zonnig solar")
    lead = MarketplaceLeadFactory(first_name="Mara", last_name="Mulder", phone="+31 6 5550 1234")
    outbound = OutboundLeadFactory(contract=contract, lead=lead)
    OutboundLeadFactory(lead=MarketplaceLeadFactory(first_name="Theo", last_name="Theirs"))
    BuyerFactory(email="bea@zonnig.nl", company=company)
    manager = UserFactory(email="morgan@example.com", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))

    page.goto(f"{live_server.url}/accounts/login/")
    sign_in(page, "bea@zonnig.nl", "pw")
    assert page.url.endswith("/buyer/")
    expect(page.get_by_role("heading", name="Bought leads")).to_be_visible()
    expect(page.get_by_role("link", name="Mara Mulder")).to_be_visible()
    expect(page.get_by_text("Theo Theirs")).to_have_count(0)

    page.get_by_role("link", name="Mara Mulder").click()
    expect(page.get_by_role("heading", name=f"Lead #{lead.pk} — Mara Mulder")).to_be_visible()
    expect(page.get_by_text("+31 6 5550 1234")).to_be_visible()
    page.get_by_label("Reason").fill("The number does not exist")
    page.get_by_role("button", name="Return this lead").click()
    expect(page.get_by_role("status")).to_have_text(
        "Return requested; a manager will approve or deny it."
    )
    expect(page.locator("#return")).to_contain_text("The number does not exist")
    page.get_by_role("button", name="Sign out bea@zonnig.nl").click()

    page.goto(f"{live_server.url}/admin/distribution/outboundlead/?return_status=requested")
    sign_in(page, "morgan@example.com", "pw")
    page.locator(f'input[name="_selected_action"][value="{outbound.pk}"]').check()
    page.locator('select[name="action"]').select_option("approve_returns")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.locator("ul.messagelist")).to_contain_text("approved")
    assert OutboundLead.objects.get(pk=outbound.pk).status == "returned"

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{live_server.url}/buyer/leads/{outbound.pk}/")
    sign_in(page, "bea@zonnig.nl", "pw")
    expect(page.locator("#return")).to_contain_text("Return approved")


def test_a_buyer_sees_spend_against_budget_drawn_and_pauses_their_contract(live_server, page):
    from decimal import Decimal

    from playwright.sync_api import expect

    from crm.models import Contract
    from tests.factories.marketplace import BuyerFactory, ContractFactory, OutboundLeadFactory

    contract = ContractFactory(name="Zonnig solar", price=Decimal("25.00"),
                               budget_month=Decimal("100.00"))  # fmt: skip
    OutboundLeadFactory(contract=contract)
    BuyerFactory(email="bea@zonnig.nl", company=contract.company)

    page.goto(f"{live_server.url}/buyer/contracts/")
    sign_in(page, "bea@zonnig.nl", "pw")
    card = page.locator(f"#contract-{contract.pk}")
    expect(card).to_contain_text("25.00")
    expect(card).to_contain_text("25 %")
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    assert page.evaluate(
        f"() => !!Chart.getChart(document.getElementById('chart-spend-{contract.pk}'))"
    )
    page.get_by_role("button", name="Pause Zonnig solar").click()
    expect(page.get_by_role("status")).to_have_text("Zonnig solar paused: it gets no new leads.")
    expect(card.locator(".contract-state")).to_have_text("Paused")
    assert Contract.objects.get(pk=contract.pk).paused
    page.get_by_role("button", name="Resume Zonnig solar").click()
    expect(card.locator(".contract-state")).to_have_text("Buying")
    assert not Contract.objects.get(pk=contract.pk).paused
