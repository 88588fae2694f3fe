"""Issue 11, agent self-service: available / away (pages and API), live offers and notices,
times in the agent's own zone, held leads that say why and until when, the inbox link of a
lead claimed by someone else, the hopper's search and pages; the simulate form's filters
and claim timeout."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
import time_machine

from accounts.models import AgentProfile
from distribution.models import Offer, Strategy
from leads.models import Lead, LeadStatus
from tests.factories import UserFactory
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.django_db
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # 11:00 CET in Amsterdam


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def visible(response) -> str:
    """What a reader sees: the text without tags (and their ISO datetime attributes)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


# --- "Agents cannot set themselves away / available; only the admin can." ----------------


def test_an_agent_sets_themself_away_on_the_agent_page_and_gets_no_offer(agents, post, web, client):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    client.force_login(a)
    assert "You are available" in text_of(client.get("/agent/"))

    response = client.post("/agent/availability", {"available": "0"}, follow=True)

    assert "You are away" in text_of(response)
    assert AgentProfile.objects.get(user=a).available is False
    lead = post()
    assert set(Offer.objects.filter(lead=lead).values_list("agent_id", flat=True)) == {b.pk}
    assert "No open offers." in text_of(client.get("/agent/"))

    client.post("/agent/availability", {"available": "1"})
    again = post()
    assert Offer.objects.filter(lead=again, agent=a, status="open").exists()
    assert again.pin in text_of(client.get("/agent/"))


def test_going_away_hands_the_open_offers_to_the_next_in_line(agents, post, web, client):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], claim_timeout=dt.timedelta(minutes=10))
    lead = post()
    assert Offer.objects.get(lead=lead, status="open").agent == a
    client.force_login(a)

    response = client.post("/agent/availability", {"available": "0"}, follow=True)

    assert "1 open offer(s) went to the next in line" in text_of(response)
    assert Offer.objects.get(lead=lead, status="open").agent == b


def test_the_agent_api_reads_and_sets_availability_and_the_schema_shows_it(agents, post, web, api):
    a, b = agents(2, timezone="Europe/Amsterdam")
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")

    me = api.get("/api/v1/me", token=a.plain_token).json()
    assert me == {
        "email": a.email,
        "name": a.name,
        "timezone": "Europe/Amsterdam",
        "available": True,
    }
    away = api.post("/api/v1/me/availability", {"available": False}, token=a.plain_token)
    assert away.status_code == 200
    assert away.json()["available"] is False
    assert api.get("/api/v1/me", token=a.plain_token).json()["available"] is False
    lead = post()
    assert not Offer.objects.filter(lead=lead, agent=a).exists()
    assert api.get("/api/v1/offers", token=a.plain_token).json() == []

    back = api.post("/api/v1/me/availability", {"available": True}, token=a.plain_token)
    assert back.json()["available"] is True
    assert api.post("/api/v1/me/availability", {}, token=a.plain_token).status_code == 422
    assert api.get("/api/v1/me").status_code == 401

    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/me"] and "post" in paths["/api/v1/me/availability"]


def test_a_session_caller_needs_the_csrf_token_to_set_availability(agents):
    from django.test import Client

    (a,) = agents(1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(a)
    response = client.post(
        "/api/v1/me/availability", '{"available": false}', content_type="application/json"
    )
    assert response.status_code == 403
    assert AgentProfile.objects.get(user=a).available is True


# --- live parts: the fragments the pages poll ----------------------------------------------


def test_the_offers_fragment_shows_an_offer_made_after_the_page_was_drawn(
    agents, post, web, client
):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web], strategy="broadcast")
    client.force_login(a)
    home = text_of(client.get("/agent/"))
    assert 'data-live-url="/agent/live/offers"' in home
    assert "js/agent.js" in home
    assert 'data-count="0"' in home

    lead = post()
    fragment = text_of(client.get("/agent/live/offers"))

    assert fragment.startswith('<div id="offers-live"')
    assert lead.pin in fragment and 'data-count="1"' in fragment
    assert "<html" not in fragment


def test_the_inbox_fragment_lists_new_notices(agents, post, web, client):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    client.force_login(b)
    assert 'data-live-url="/agent/inbox/live"' in text_of(client.get("/agent/inbox/"))
    lead = post()
    client.force_login(a)
    client.post(f"/agent/offers/{Offer.objects.get(lead=lead, agent=a).pk}/claim")

    client.force_login(b)
    fragment = text_of(client.get("/agent/inbox/live"))
    assert f"Lead #{lead.pk} was claimed by another agent" in fragment
    assert 'data-count="1"' in fragment


# --- "Pages show unlabelled UTC although each agent has a time zone" -----------------------


def test_agent_pages_show_times_in_the_agents_zone_labelled(agents, post, web, client):
    a, b = agents(2, timezone="Europe/Amsterdam")
    make_rule(
        pool=make_pool([a, b]),
        sources=[web],
        strategy="broadcast",
        claim_timeout=dt.timedelta(minutes=10),
    )
    with time_machine.travel(MONDAY_10, tick=False):
        lead = post()
        client.force_login(a)
        home = visible(client.get("/agent/"))
        detail = visible(client.get(f"/agent/leads/{lead.pk}/"))
        client.post(f"/agent/offers/{Offer.objects.get(lead=lead, agent=a).pk}/claim")
        mine = visible(client.get("/agent/"))
        client.force_login(b)
        inbox = visible(client.get("/agent/inbox/"))

    # expires 10:10 UTC = 11:10 in Amsterdam (CET in March)
    assert "11:10 CET" in home and "10:10" not in home
    assert "claim before" in detail and "11:10 CET" in detail and "10:10" not in detail
    assert "11:00 CET" in mine  # assigned at
    assert "11:00 CET" in inbox  # the "claimed by another agent" notice


def test_a_utc_agent_sees_utc_labelled(agents, post, web, client):
    (a,) = agents(1)
    make_rule(
        pool=make_pool([a]), sources=[web], strategy="broadcast", claim_timeout=dt.timedelta(0, 600)
    )
    with time_machine.travel(MONDAY_10, tick=False):
        post()
        client.force_login(a)
        assert "10:10 UTC" in text_of(client.get("/agent/"))


# --- "A held lead says neither why nor until when (API, agent pages)" ----------------------


def test_the_api_lead_document_says_why_and_until_when_a_lead_is_held(post, web, api, agents):
    (a,) = agents(1)
    hours = make_schedule(days=range(5), start="09:00", end="17:00")
    make_rule("Office", pool=make_pool([a]), sources=[web], schedule=hours)  # after_hours=hold

    with time_machine.travel(dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC), tick=False):
        lead = post()  # a Saturday
        doc = api.get(f"/api/v1/leads/{lead.pk}", token=web.plain_token).json()

    assert doc["status"] == "held"
    assert doc["held_until"] == "2025-03-03T09:00:00Z"
    assert "after hours" in doc["held_reason"] and "'Office'" in doc["held_reason"]
    assert "'hours'" in doc["held_reason"]  # the schedule
    schema = api.get("/api/v1/openapi.json").json()["components"]["schemas"]["LeadOut"]
    assert {"held_until", "held_reason"} <= set(schema["properties"])


def test_a_lead_not_held_has_no_hold_in_its_document(post, web, api):
    lead = post()
    doc = api.get(f"/api/v1/leads/{lead.pk}", token=web.plain_token).json()
    assert (doc["held_until"], doc["held_reason"]) == (None, None)


def test_an_agent_page_says_why_and_until_when_a_lead_it_was_offered_is_held(
    agents, post, web, client
):
    a, b = agents(2, timezone="Europe/Amsterdam")
    hours = make_schedule(days=range(5), start="09:00", end="17:00")
    make_rule(
        "Office",
        pool=make_pool([a, b]),
        sources=[web],
        schedule=hours,
        claim_timeout=dt.timedelta(minutes=15),
    )
    with time_machine.travel(dt.datetime(2025, 3, 3, 16, 50, tzinfo=UTC), tick=False) as clock:
        lead = post()
        offer = Offer.objects.get(lead=lead, status="open")
        client.force_login(offer.agent)
        clock.move_to(dt.datetime(2025, 3, 3, 17, 30, tzinfo=UTC))  # closed since 17:00
        client.post(f"/agent/offers/{offer.pk}/decline")
        assert Lead.objects.get(pk=lead.pk).status == LeadStatus.HELD
        page = client.get(f"/agent/leads/{lead.pk}/")

    assert page.status_code == 200
    body = visible(page)
    assert "Held until" in body and "Tue 4 Mar 10:00 CET" in body  # 09:00 UTC
    assert "after hours: rule 'Office' is closed" in body


# --- "The inbox's "open" link of a lead claimed by someone else is a 404" ------------------


def test_the_inbox_open_link_of_a_lead_claimed_by_someone_else_says_so(agents, post, web, client):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    lead = post(first_name="Olga", phone="+31 6 1234 5678")
    client.force_login(a)
    client.post(f"/agent/offers/{Offer.objects.get(lead=lead, agent=a).pk}/claim")

    client.force_login(b)
    inbox = text_of(client.get("/agent/inbox/"))
    link = f'href="/agent/leads/{lead.pk}/"'
    assert link in inbox
    page = client.get(f"/agent/leads/{lead.pk}/")

    assert page.status_code == 200
    body = text_of(page)
    assert "Claimed by someone else" in body
    assert "+31 6 1234 5678" not in body and lead.pin not in body


def test_a_lead_the_agent_never_had_is_still_a_404(agents, post, web, client):
    a, b = agents(2)
    make_rule(pool=make_pool([a]), sources=[web], strategy="round_robin")
    lead = post()
    client.force_login(b)
    assert client.get(f"/agent/leads/{lead.pk}/").status_code == 404


# --- "the hopper stops at 200 rows with no search" -----------------------------------------


def hopper_leads(n: int, rule, **fields) -> list[Lead]:
    start = dt.datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
    return Lead.objects.bulk_create(
        [
            Lead(
                source=rule.sources.first(),
                rule=rule,
                status=LeadStatus.WAITING,
                distribution_state="active",
                first_name=f"Lead{i}",
                email=f"h{i}@example.com",
                created_at=start + dt.timedelta(seconds=i // 2),  # ties on created_at
                **fields,
            )
            for i in range(n)
        ]
    )


def test_the_hopper_pages_through_more_than_200_leads(agents, web, client):
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], strategy=Strategy.HOPPER)
    made = hopper_leads(230, rule)
    client.force_login(a)

    seen: list[int] = []
    url = "/agent/hopper/"
    for _ in range(10):
        body = client.get(url).content.decode()
        seen += [int(x) for x in re.findall(r'action="/agent/hopper/(\d+)/claim"', body)]
        found = re.search(r'href="(\?[^"]*after=\d+)" rel="next"', body)
        if not found:
            break
        url = "/agent/hopper/" + found.group(1).replace("&amp;", "&")

    assert seen == [lead.pk for lead in made]  # every one, oldest first, none twice


def test_the_hopper_searches_name_email_phone_and_postcode(agents, web, client):
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], strategy=Strategy.HOPPER)
    hopper_leads(5, rule)
    (mara,) = Lead.objects.bulk_create(
        [
            Lead(
                source=web,
                rule=rule,
                status=LeadStatus.WAITING,
                first_name="Mara",
                last_name="Mulder",
                email="mara@mulder.nl",
                phone="+31 6 1234 5678",
                phone_normalized="+31612345678",
                postcode="3511 AB",
            )
        ]
    )
    client.force_login(a)

    def found(q: str) -> list[int]:
        body = client.get("/agent/hopper/", {"q": q}).content.decode()
        return [int(x) for x in re.findall(r'action="/agent/hopper/(\d+)/claim"', body)]

    for q in ("mara", "Mara Mulder", "mulder.nl", "0612345678", "6 1234", "3511 AB"):
        assert found(q) == [mara.pk], q
    assert found("nobody-like-this") == []
    assert "No lead in your hoppers matches" in text_of(
        client.get("/agent/hopper/", {"q": "nobody"})
    )
    assert len(found("")) == 6


def test_the_hopper_api_searches_and_continues_after_an_id(agents, web, api):
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web], strategy=Strategy.HOPPER)
    made = hopper_leads(205, rule)
    first = api.get("/api/v1/hopper", token=a.plain_token).json()
    assert len(first) == 200
    rest = api.get(f"/api/v1/hopper?after={first[-1]['id']}", token=a.plain_token).json()
    assert [x["id"] for x in first + rest] == [lead.pk for lead in made]
    assert [x["id"] for x in api.get("/api/v1/hopper?q=h17@", token=a.plain_token).json()] == [
        made[17].pk
    ]


# --- "The simulate form pre-fills its filters with `null` and accepts `forever`" ----------


def test_the_simulate_form_does_not_prefill_its_filters_with_null(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/distribution/rule/simulate/").content.decode()
    textarea = re.search(r'<textarea[^>]*name="filters"[^>]*>(.*?)</textarea>', page, re.S)
    assert textarea is not None
    assert textarea.group(1).strip() == ""


def test_the_simulate_form_refuses_forever_as_a_claim_timeout(agents, web, client):
    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web])
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(
        "/admin/distribution/rule/simulate/",
        {"rule": rule.pk, "days": 7, "claim_timeout": "forever"},
    ).content.decode()

    assert "Not a duration" in page
    assert "Who would receive how many" not in page
    ok = client.get(
        "/admin/distribution/rule/simulate/", {"rule": rule.pk, "days": 7, "claim_timeout": "15m"}
    ).content.decode()
    assert "Not a duration" not in ok and "Who would receive how many" in ok


def test_simulating_a_non_duration_claim_timeout_is_refused_by_the_service(agents, web):
    from distribution.services.simulate import rule_simulate

    (a,) = agents(1)
    rule = make_rule(pool=make_pool([a]), sources=[web])
    with pytest.raises(ValueError, match="not a duration"):
        rule_simulate(rule_name=rule.name, days=1, changes={"claim_timeout": "forever"})
