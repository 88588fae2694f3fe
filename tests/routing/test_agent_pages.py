"""The agent pages: offers with PINs, claim and decline, PIN form, Get lead, hopper, inbox."""

from __future__ import annotations

import pytest

from distribution.models import Offer
from leads.models import Lead
from tests.routing.conftest import make_pool, make_rule

pytestmark = pytest.mark.django_db


def test_the_home_page_shows_offers_with_pins_and_claiming_makes_the_lead_mine(
    agents, post, web, client
):
    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], strategy="broadcast")
    lead = post(first_name="Olga", phone="+31 6 1234 5678")
    offer = Offer.objects.get(lead=lead, agent=a)
    client.force_login(a)

    page = client.get("/agent/").content.decode()
    assert lead.pin in page and f"/agent/offers/{offer.pk}/claim" in page

    response = client.post(f"/agent/offers/{offer.pk}/claim", follow=True)
    assert response.redirect_chain[-1][0] == f"/agent/leads/{lead.pk}/"
    assert "tel:+31 6 1234 5678" in response.content.decode()
    assert Lead.objects.get(pk=lead.pk).owner == a

    client.force_login(b)
    other = Offer.objects.get(lead=lead, agent=b)
    response = client.post(f"/agent/offers/{other.pk}/claim", follow=True)
    assert "already been claimed" in response.content.decode()
    inbox = client.get("/agent/inbox/").content.decode()
    assert f"Lead #{lead.pk} was claimed by another agent" in inbox


def test_declining_hands_the_lead_to_the_next_in_line(agents, post, web, client):
    import datetime as dt

    a, b = agents(2)
    make_rule(pool=make_pool([a, b]), sources=[web], claim_timeout=dt.timedelta(minutes=5))
    lead = post()
    offer = Offer.objects.get(lead=lead, agent=a)
    client.force_login(a)
    client.post(f"/agent/offers/{offer.pk}/decline")
    assert Offer.objects.get(lead=lead, status="open").agent == b


def test_the_pin_form_claims(agents, post, web, client):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web], strategy="broadcast")
    lead = post()
    client.force_login(a)
    client.post("/agent/claim", {"pin": lead.pin})
    assert Lead.objects.get(pk=lead.pk).owner == a


def test_get_lead_button_pulls_and_says_when_nothing_waits(agents, post, web, client):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web], strategy="pull")
    client.force_login(a)
    assert "Get lead" in client.get("/agent/").content.decode()
    response = client.post("/agent/pull", follow=True)
    assert "No lead is waiting" in response.content.decode()
    lead = post()
    response = client.post("/agent/pull", follow=True)
    assert response.redirect_chain[-1][0] == f"/agent/leads/{lead.pk}/"


def test_the_hopper_page_lists_and_takes(agents, post, web, client):
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web], strategy="hopper")
    lead = post(first_name="Hanna", city="Gouda")
    client.force_login(a)
    assert "Gouda" in client.get("/agent/hopper/").content.decode()
    client.post(f"/agent/hopper/{lead.pk}/claim")
    assert Lead.objects.get(pk=lead.pk).owner == a


def test_mutations_are_post_only(agents, client):
    (a,) = agents(1)
    client.force_login(a)
    for path in (
        "/agent/offers/1/claim",
        "/agent/offers/1/decline",
        "/agent/claim",
        "/agent/pull",
        "/agent/hopper/1/claim",
    ):
        assert client.get(path).status_code == 405, path


def test_an_agent_cannot_open_a_lead_that_is_not_theirs(agents, post, web, client):
    a, b = agents(2)
    make_rule(pool=make_pool([a]), sources=[web])
    lead = post()
    client.force_login(b)
    assert client.get(f"/agent/leads/{lead.pk}/").status_code == 404
