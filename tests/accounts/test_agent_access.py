"""How agents get in: API tokens (stored hashed) and the signed-in agent pages."""

from __future__ import annotations

import hashlib

import pytest

from accounts.models import AgentProfile
from accounts.tokens import hash_token, new_token
from leads.models import Activity
from tests.factories import AgentFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_tokens_are_random_prefixed_and_stored_only_as_digests(agent):
    tokens = {new_token("agt") for _ in range(50)}
    assert len(tokens) == 50
    assert all(t.startswith("agt_") and len(t) >= 30 for t in tokens)

    profile = AgentProfile.objects.get(user=agent)
    assert profile.api_token_hash == hashlib.sha256(agent.plain_token.encode()).hexdigest()
    assert profile.api_token_hash == hash_token(agent.plain_token)
    assert agent.plain_token not in str(AgentProfile.objects.filter(user=agent).values().get())


def test_a_deactivated_user_token_stops_working(api, agent):
    lead = LeadFactory(owner=agent, assigned=True)
    assert api.get(f"/api/v1/leads/{lead.pk}", token=agent.plain_token).status_code == 200

    agent.is_active = False
    agent.save()

    assert api.get(f"/api/v1/leads/{lead.pk}", token=agent.plain_token).status_code == 401


# --- the agent pages -------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/agent/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/agent/")


def test_an_agent_signs_in_with_e_mail_and_password_and_lands_on_their_leads(client, agent):
    mine = LeadFactory(first_name="Mara", last_name="Mine", owner=agent, assigned=True)
    LeadFactory(first_name="Theo", last_name="Theirs", owner=AgentFactory(), assigned=True)

    response = client.post(
        "/accounts/login/", {"username": agent.email, "password": "pw"}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/agent/"
    page = response.content.decode()
    assert "Mara Mine" in page
    assert f"/agent/leads/{mine.pk}/" in page
    assert "Theo" not in page


def test_a_wrong_password_is_refused(client, agent):
    response = client.post("/accounts/login/", {"username": agent.email, "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_an_agent_opens_a_lead_and_logs_an_activity(client, agent):
    lead = LeadFactory(first_name="Mara", owner=agent, assigned=True)
    client.force_login(agent)

    response = client.post(
        f"/agent/leads/{lead.pk}/activity",
        {"kind": "call_attempt", "note": "no answer, try at 5"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == f"/agent/leads/{lead.pk}/"
    page = response.content.decode()
    assert "Activity logged." in page
    assert "no answer, try at 5" in page
    assert Activity.objects.get(lead=lead).agent == agent


def test_an_activity_without_a_kind_is_refused(client, agent):
    lead = LeadFactory(owner=agent, assigned=True)
    client.force_login(agent)

    response = client.post(f"/agent/leads/{lead.pk}/activity", {"kind": "dance"}, follow=True)

    assert "Choose what kind of activity to log." in response.content.decode()
    assert not Activity.objects.exists()


def test_an_agent_cannot_open_or_log_on_someone_elses_lead(client, agent):
    theirs = LeadFactory(owner=AgentFactory(), assigned=True)
    client.force_login(agent)

    assert client.get(f"/agent/leads/{theirs.pk}/").status_code == 404
    response = client.post(f"/agent/leads/{theirs.pk}/activity", {"kind": "note"})
    assert response.status_code == 404
    assert not Activity.objects.exists()


def test_logging_an_activity_needs_a_post(client, agent):
    lead = LeadFactory(owner=agent, assigned=True)
    client.force_login(agent)
    assert client.get(f"/agent/leads/{lead.pk}/activity").status_code == 405


def test_a_signed_in_user_without_an_agent_profile_is_told_so(client):
    manager = UserFactory(is_staff=True)
    client.force_login(manager)

    response = client.get("/agent/")

    assert response.status_code == 403
    assert "for agents" in response.content.decode()


def test_a_user_signs_in_with_the_email_even_when_the_username_differs(client, db):
    from tests.factories import UserFactory

    UserFactory(email="boss@example.com", username="boss", is_staff=True)
    response = client.post("/accounts/login/", {"username": "boss@example.com", "password": "pw"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
