"""Agent self-service in a real browser (Debian chromium driven by Playwright): an offer
appears without a reload and its countdown runs, with a title badge and a beep; an agent
sets themself away and gets no offer; the pages fit a 390 px phone; the hopper searches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from distribution.models import Offer
from distribution.services.distribute import lead_distribute
from leads.models import Lead, LeadStatus
from tests.acceptance import test_pages_browser as pages
from tests.factories import AgentFactory, SourceFactory
from tests.routing.conftest import make_pool, make_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
browser, sign_in = pages.browser, pages.sign_in
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def fast_polls(settings: Any) -> None:
    settings.AGENT_POLL_SECONDS = 0.5


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context()
    context.set_default_timeout(pages.TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def phone(browser: Any) -> Any:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    context.set_default_timeout(pages.TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def arrive(source: Any, **fields: Any) -> Lead:
    lead = Lead.objects.create(source=source, **fields)
    lead_distribute(lead_id=lead.pk)
    lead.refresh_from_db()
    return lead


def test_an_offer_appears_without_a_reload_and_its_countdown_runs(live_server, page, fast_polls):
    from playwright.sync_api import expect

    source = SourceFactory(slug="live-web")
    ava = AgentFactory(email="ava@example.com", profile__timezone="Europe/Amsterdam")
    make_rule(
        pool=make_pool([ava]),
        sources=[source],
        strategy="broadcast",
        claim_timeout=dt.timedelta(minutes=10),
    )
    page.goto(f"{live_server.url}/agent/")
    sign_in(page, "ava@example.com", "pw")
    expect(page.get_by_text("No open offers.")).to_be_visible()
    page.evaluate("window.__drawn = true")  # gone if the page were reloaded
    assert not page.title().startswith("(")

    lead = arrive(source, first_name="Pia", email="pia@example.com")

    offers = page.locator("#offers")
    expect(offers.get_by_text(lead.pin)).to_be_visible()
    assert page.evaluate("window.__drawn") is True
    expect(page).to_have_title("(1) My leads · Leadrouter")
    page.wait_for_function("Number(document.body.dataset.beeps || 0) >= 1")
    countdown = offers.locator(".countdown")
    expect(countdown).to_have_text(lambda_re(r"\(\d+:\d\d left\)"))
    first = int(countdown.get_attribute("data-seconds-left"))
    assert 590 <= first <= 600
    page.wait_for_function(
        f"Number(document.querySelector('.countdown').dataset.secondsLeft) < {first}"
    )
    # the expiry is shown in the agent's own zone, labelled
    expect(offers.locator("time")).to_contain_text("CE")


def lambda_re(pattern: str) -> Any:
    import re

    return re.compile(pattern)


def test_an_agent_sets_themself_away_and_then_gets_no_offer(live_server, page, fast_polls):
    from playwright.sync_api import expect

    source = SourceFactory(slug="away-web")
    ava, ben = AgentFactory(email="ava@example.com"), AgentFactory(email="ben@example.com")
    make_rule(pool=make_pool([ava, ben]), sources=[source], strategy="broadcast")
    page.goto(f"{live_server.url}/agent/")
    sign_in(page, "ava@example.com", "pw")
    expect(page.locator("#availability")).to_contain_text("You are available")

    page.get_by_role("button", name="Set me away").click()

    expect(page.locator("#availability")).to_contain_text("You are away")
    lead = arrive(source, first_name="Pia", email="pia@example.com")
    polls = int(page.evaluate("Number(document.body.dataset.polls || 0)"))
    page.wait_for_function(f"Number(document.body.dataset.polls || 0) >= {polls + 2}")
    expect(page.get_by_text("No open offers.")).to_be_visible()
    expect(page.get_by_text(lead.pin)).to_have_count(0)
    assert list(Offer.objects.filter(lead=lead).values_list("agent__email", flat=True)) == [
        "ben@example.com"
    ]

    page.get_by_role("button", name="Set me available").click()
    expect(page.locator("#availability")).to_contain_text("You are available")
    again = arrive(source, first_name="Quinn", email="quinn@example.com")
    expect(page.locator("#offers").get_by_text(again.pin)).to_be_visible()


def no_sideways_scroll(page: Any) -> int:
    return int(page.evaluate("document.scrollingElement.scrollWidth"))


def test_the_agent_pages_fit_a_390_px_phone(live_server, phone):
    from playwright.sync_api import expect

    source = SourceFactory(slug="phone-web")
    ava = AgentFactory(
        email="ava.with-a-rather-long-address@example-company.com", profile__timezone="Asia/Kolkata"
    )
    make_rule(
        pool=make_pool([ava]),
        sources=[source],
        strategy="broadcast",
        claim_timeout=dt.timedelta(minutes=15),
    )
    offered = arrive(source, first_name="Pia", last_name="Piranha", city="Amsterdam")
    owned = arrive(
        source, first_name="Maximiliane", last_name="Oppenheimer-Vandersteen", phone="+31 6 55"
    )
    Offer.objects.filter(lead=owned).delete()
    Lead.objects.filter(pk=owned.pk).update(owner=ava, status=LeadStatus.ASSIGNED)
    hopper_rule = make_rule("hop", pool=make_pool([ava], name="hop"), strategy="hopper")
    Lead.objects.create(
        source=source,
        rule=hopper_rule,
        status=LeadStatus.WAITING,
        first_name="Hanna",
        city="Gouda",
        company_name="A company with a long name that goes on",
    )

    phone.goto(f"{live_server.url}/agent/")
    sign_in(phone, ava.email, "pw")
    expect(phone.locator("#offers").get_by_text(offered.pin)).to_be_visible()
    widths = {"/agent/": no_sideways_scroll(phone)}
    for path in ("/agent/hopper/", "/agent/inbox/", f"/agent/leads/{owned.pk}/"):
        phone.goto(f"{live_server.url}{path}")
        expect(phone.locator("main")).to_be_visible()
        widths[path] = no_sideways_scroll(phone)
    phone.goto(f"{live_server.url}/agent/leads/{offered.pk}/")
    widths["offered lead"] = no_sideways_scroll(phone)

    assert all(w <= 390 for w in widths.values()), widths


def test_the_hopper_searches_in_the_browser(live_server, page):
    from playwright.sync_api import expect

    source = SourceFactory(slug="hop-web")
    ava = AgentFactory(email="ava@example.com")
    rule = make_rule(pool=make_pool([ava]), sources=[source], strategy="hopper")
    for first, city, postcode in (("Hanna", "Gouda", "2801 AA"), ("Ivo", "Delft", "2611 BB")):
        Lead.objects.create(
            source=source,
            rule=rule,
            status=LeadStatus.WAITING,
            first_name=first,
            city=city,
            postcode=postcode,
        )

    page.goto(f"{live_server.url}/agent/hopper/")
    sign_in(page, "ava@example.com", "pw")
    expect(page.get_by_text("Gouda")).to_be_visible()
    expect(page.get_by_text("Delft")).to_be_visible()

    page.get_by_role("searchbox", name="Search").fill("2611")
    page.get_by_role("button", name="Search").click()

    expect(page.get_by_text("Delft")).to_be_visible()
    expect(page.get_by_text("Gouda")).to_have_count(0)
    page.get_by_role("searchbox", name="Search").fill("Nobody")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No lead in your hoppers matches")).to_be_visible()
