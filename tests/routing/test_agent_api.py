"""The agent API (DESIGN §7): offers with PINs, claims, PIN claims, pull, hopper; 409, 403,
204; bearer token or session."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from distribution.models import Offer
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)


def test_offers_lists_open_offers_with_the_leads_pin(agents, post, web, api):
    a, b = agents(2)
    make_rule(
        pool=make_pool([a, b]),
        sources=[web],
        strategy="broadcast",
        claim_timeout=dt.timedelta(minutes=10),
    )
    with time_machine.travel(MONDAY_10, tick=False):
        lead = post()
        body = api.get("/api/v1/offers", token=a.plain_token).json()
    offer = Offer.objects.get(lead=lead, agent=a)
    assert body == [
        {"id": offer.pk, "lead": lead.pk, "pin": lead.pin, "expires_at": "2025-03-03T10:10:00Z"}
    ]


def test_claim_wins_once_then_409_already_claimed_and_the_owner_reads_it(agents, post, web, api):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    lead = post()
    offers = {o.agent_id: o.pk for o in Offer.objects.filter(lead=lead)}

    won = api.post(f"/api/v1/offers/{offers[b.pk]}/claim", token=b.plain_token)
    lost = api.post(f"/api/v1/offers/{offers[a.pk]}/claim", token=a.plain_token)

    assert won.status_code == 200 and won.json()["owner"] == b.email
    assert lost.status_code == 409 and lost.json()["code"] == "already_claimed"
    assert api.get(f"/api/v1/leads/{lead.pk}", token=b.plain_token).json()["owner"] == b.email
    assert api.get("/api/v1/offers", token=a.plain_token).json() == []


def test_an_expired_offer_answers_409_offer_expired(agents, post, web, api):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web], claim_timeout=dt.timedelta(minutes=5))
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        lead = post()
        offer = Offer.objects.get(lead=lead)
        clock.shift(dt.timedelta(minutes=6))
        response = api.post(f"/api/v1/offers/{offer.pk}/claim", token=a.plain_token)
    assert response.status_code == 409 and response.json()["code"] == "offer_expired"


def test_someone_elses_offer_answers_403(agents, post, web, api):
    a, b = agents(2)
    make_rule(pool=make_pool([a]), sources=[web], claim_timeout=dt.timedelta(minutes=5))
    offer = Offer.objects.get(lead=post())
    response = api.post(f"/api/v1/offers/{offer.pk}/claim", token=b.plain_token)
    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code", "errors"}


def test_claim_by_pin(agents, post, web, api):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    lead = post()
    assert api.post("/api/v1/claims", {"pin": "not-it"}, token=a.plain_token).status_code == 403
    assert api.post("/api/v1/claims", {"pin": lead.pin}, token=a.plain_token).status_code == 200
    late = api.post("/api/v1/claims", {"pin": lead.pin}, token=b.plain_token)
    assert late.status_code == 409 and late.json()["code"] == "already_claimed"


def test_pull_answers_204_when_nothing_waits_and_the_lead_otherwise(agents, post, web, api):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web], strategy="pull")
    assert api.post("/api/v1/pull", token=a.plain_token).status_code == 204
    lead = post()
    response = api.post("/api/v1/pull", token=a.plain_token)
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["owner"]) == (lead.pk, a.email)


def test_hopper_lists_and_claims(agents, post, web, api):
    a, b, outsider = agents(3)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="hopper")
    lead = post(first_name="Hop")
    listed = api.get("/api/v1/hopper", token=a.plain_token).json()
    assert [x["id"] for x in listed] == [lead.pk]
    assert api.get("/api/v1/hopper", token=outsider.plain_token).json() == []
    assert (
        api.post(f"/api/v1/hopper/{lead.pk}/claim", token=outsider.plain_token).status_code == 403
    )
    assert api.post(f"/api/v1/hopper/{lead.pk}/claim", token=a.plain_token).status_code == 200
    again = api.post(f"/api/v1/hopper/{lead.pk}/claim", token=b.plain_token)
    assert again.status_code == 409 and again.json()["code"] == "already_claimed"


def test_agent_endpoints_need_an_agent(api, source):
    assert api.get("/api/v1/offers").status_code == 401
    assert api.get("/api/v1/offers", token=source.plain_token).status_code == 401


def test_a_session_works_and_needs_csrf_for_posts(agents, post, web, client):
    from django.test import Client

    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web], strategy="pull")
    post()
    client.force_login(a)
    assert client.get("/api/v1/offers").status_code == 200
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(a)
    assert strict.post("/api/v1/pull").status_code == 403


def test_the_openapi_schema_lists_the_agent_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for p in (
        "/api/v1/offers",
        "/api/v1/offers/{offer_id}/claim",
        "/api/v1/claims",
        "/api/v1/pull",
        "/api/v1/hopper",
        "/api/v1/hopper/{lead_id}/claim",
    ):
        assert p in paths


def test_an_offered_agent_reads_the_lead(agents, post, web, api):
    a, b = agents(2)
    make_rule(pool=make_pool([a]), sources=[web], claim_timeout=dt.timedelta(minutes=5))
    lead = post()
    assert api.get(f"/api/v1/leads/{lead.pk}", token=a.plain_token).status_code == 200
    assert api.get(f"/api/v1/leads/{lead.pk}", token=b.plain_token).status_code == 404
    assert api.get(f"/api/v1/leads/{lead.pk}", token=web.plain_token).json()["rule"] == "rule"
