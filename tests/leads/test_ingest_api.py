"""The ingestion API as a web form or a lead vendor sees it (DESIGN §3 Ingestion, §7)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from distribution.models import DistributionAttempt
from distribution.services import leads_requeue_stale
from leads.models import Lead, LeadEvent
from tests.conftest import celery_publishing_to
from tests.factories import AgentFactory, CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads"


def jane(**overrides: Any) -> dict[str, Any]:
    body = {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.com",
        "phone": "+1 212 555 0101",
        "external_id": "form-1",
        "city": "New York",
        "country": "us",
        "latitude": 40.71,
        "longitude": -74.0,
    }
    body.update(overrides)
    return body


def stored() -> tuple[int, int, int]:
    return (Lead.objects.count(), LeadEvent.objects.count(), DistributionAttempt.objects.count())


# --- POST /api/v1/leads ---------------------------------------------------------------


def test_a_new_lead_answers_201_with_its_public_shape(api, source):
    response = api.post(LEADS, jane(), token=source.plain_token)

    assert response.status_code == 201
    body = response.json()
    lead = Lead.objects.get()
    assert body["id"] == lead.pk
    assert body["status"] == "pending"
    assert body["owner"] is None
    assert body["rule"] is None
    assert body["outbound"] == []
    # the API writes milliseconds
    assert abs(datetime.fromisoformat(body["created_at"]) - lead.created_at) < timedelta(
        milliseconds=1
    )
    assert (lead.source, lead.external_id, lead.first_name, lead.email, lead.country) == (
        source,
        "form-1",
        "Jane",
        "jane@example.com",
        "US",
    )


def test_a_repeat_of_source_and_external_id_answers_200_with_the_same_lead_unchanged(
    api, source, django_capture_on_commit_callbacks
):
    first = api.post(LEADS, jane(), token=source.plain_token).json()
    lead = Lead.objects.get()
    events_before = LeadEvent.objects.count()

    with django_capture_on_commit_callbacks() as queued:
        again = api.post(
            LEADS, jane(first_name="Janet", email="other@example.com"), token=source.plain_token
        )

    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["first_name"] == "Jane"
    assert Lead.objects.count() == 1
    reloaded = Lead.objects.get()
    assert (reloaded.first_name, reloaded.email, reloaded.updated_at) == (
        "Jane",
        "jane@example.com",
        lead.updated_at,
    )
    assert LeadEvent.objects.count() == events_before
    assert queued == []  # not queued for distribution a second time


def test_the_same_external_id_from_another_source_is_a_new_lead(api, source):
    other = SourceFactory()
    a = api.post(LEADS, jane(), token=source.plain_token)
    b = api.post(LEADS, jane(), token=other.plain_token)

    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert Lead.objects.filter(external_id="form-1").count() == 2


def test_leads_without_external_id_are_never_collapsed(api, source):
    body = jane(external_id=None)
    assert api.post(LEADS, body, token=source.plain_token).status_code == 201
    assert api.post(LEADS, body, token=source.plain_token).status_code == 201
    assert Lead.objects.count() == 2


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "jane-at-example"}, "email", "not a valid e-mail"),
        ({"campaign": "no-such-campaign"}, "campaign", "unknown campaign"),
        ({"latitude": "north"}, "latitude", "number"),
        ({"latitude": 91}, "latitude", "between -90"),
        ({"latitude": float("nan")}, "latitude", "not a number"),
        ({"longitude": -181}, "longitude", "between -180"),
        ({"first_name": "", "last_name": "", "email": "", "phone": ""}, "email", "at least"),
    ],
    ids=[
        "bad-email",
        "unknown-campaign",
        "latitude-not-a-number",
        "latitude-out-of-range",
        "latitude-nan",
        "longitude-out-of-range",
        "no-contact-at-all",
    ],
)
def test_invalid_input_answers_422_with_field_errors_and_stores_nothing(
    api, source, django_capture_on_commit_callbacks, overrides, field, message
):
    with django_capture_on_commit_callbacks() as queued:
        response = api.post(LEADS, jane(**overrides), token=source.plain_token)

    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert body["code"] == "invalid"
    assert field in body["errors"], body
    assert any(message in m for m in body["errors"][field]), body
    assert stored() == (0, 0, 0)
    assert queued == []


def test_every_bad_field_is_reported_at_once(api, source):
    response = api.post(
        LEADS, jane(email="nope", country="USA", campaign="nope"), token=source.plain_token
    )

    assert response.status_code == 422
    assert set(response.json()["errors"]) >= {"email", "country", "campaign"}
    assert Lead.objects.count() == 0


@pytest.mark.parametrize("token", [None, "not-a-real-token"], ids=["missing", "wrong"])
def test_a_missing_or_wrong_token_answers_401_and_stores_nothing(api, source, token):
    response = api.post(LEADS, jane(), token=token or "")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert set(response.json()) == {"detail", "code", "errors"}
    assert stored() == (0, 0, 0)


def test_an_inactive_source_is_refused(api):
    retired = SourceFactory(active=False)
    assert api.post(LEADS, jane(), token=retired.plain_token).status_code == 401
    assert Lead.objects.count() == 0


def test_an_agent_token_cannot_post_leads(api, agent):
    assert api.post(LEADS, jane(), token=agent.plain_token).status_code == 401
    assert Lead.objects.count() == 0


def test_unknown_keys_are_kept_in_attributes(api, source):
    response = api.post(
        LEADS,
        jane(favourite_colour="teal", roof_m2=42, attributes={"budget": 5000}),
        token=source.plain_token,
    )

    assert response.status_code == 201
    lead = Lead.objects.get()
    assert lead.attributes == {"favourite_colour": "teal", "roof_m2": 42, "budget": 5000}


def test_a_known_campaign_is_linked(api, source):
    solar = CampaignFactory(slug="solar")
    response = api.post(LEADS, jane(campaign="solar"), token=source.plain_token)

    assert response.status_code == 201
    assert Lead.objects.get().campaign == solar


# --- distribution after commit ---------------------------------------------------------


def test_distribution_is_queued_on_commit_and_the_lead_ends_unassigned(
    api, source, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        response = api.post(LEADS, jane(), token=source.plain_token)
    lead_id = response.json()["id"]

    # saved first, distributed only once the transaction commits
    assert len(queued) == 1
    assert Lead.objects.get(pk=lead_id).status == "pending"
    assert not DistributionAttempt.objects.exists()

    queued[0]()  # the commit happens: the task runs (eagerly in the unit tests)

    lead = Lead.objects.get(pk=lead_id)
    assert (lead.status, lead.distribution_state) == ("unassigned", "done")
    attempt = DistributionAttempt.objects.get(lead=lead)
    assert (attempt.outcome, attempt.trigger) == ("no_rule_matched", "arrival")
    assert api.get(f"{LEADS}/{lead_id}", token=source.plain_token).json()["status"] == (
        "unassigned"
    )


def test_a_broker_outage_delays_a_lead_but_loses_none(
    api, source, closed_port, django_capture_on_commit_callbacks, caplog
):
    with (
        caplog.at_level(logging.WARNING, logger="distribution.services.queueing"),
        celery_publishing_to(f"redis://127.0.0.1:{closed_port}/0"),
        django_capture_on_commit_callbacks(execute=True),
    ):  # the commit tries the broker
        response = api.post(LEADS, jane(), token=source.plain_token)

    assert response.status_code == 201
    lead = Lead.objects.get(pk=response.json()["id"])
    assert (lead.status, lead.distribution_state) == ("pending", "pending")
    assert "the sweeper will retry" in caplog.text

    assert leads_requeue_stale() == 0  # still inside the grace period
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert leads_requeue_stale() == 1

    lead.refresh_from_db()
    assert lead.status == "unassigned"
    assert DistributionAttempt.objects.get(lead=lead).trigger == "sweeper"


# --- duplicates ------------------------------------------------------------------------


def test_a_lead_with_the_same_normalised_email_in_the_campaign_links_to_the_original(api, source):
    CampaignFactory(slug="solar")
    original = api.post(
        LEADS,
        jane(campaign="solar", email="Jane.Doe@Example.com", phone=""),
        token=source.plain_token,
    ).json()
    again = api.post(
        LEADS,
        jane(campaign="solar", external_id="form-2", email="  jane.doe@example.COM ", phone=""),
        token=source.plain_token,
    )

    assert again.status_code == 201
    assert again.json()["duplicate_of"] == original["id"]
    assert Lead.objects.get(pk=again.json()["id"]).duplicate_of_id == original["id"]
    assert Lead.objects.count() == 2  # linked, never deleted or merged
    assert LeadEvent.objects.filter(lead_id=again.json()["id"], kind="duplicate").exists()


def test_a_lead_with_the_same_phone_in_another_format_links_to_the_original(api, source):
    CampaignFactory(slug="solar")
    original = api.post(
        LEADS, jane(campaign="solar", phone="+1 (212) 555-0101"), token=source.plain_token
    ).json()
    again = api.post(
        LEADS,
        jane(
            campaign="solar",
            external_id="form-2",
            email="someone.else@example.com",
            phone="212.555.0101",
        ),
        token=source.plain_token,
    ).json()
    third = api.post(
        LEADS,
        jane(campaign="solar", external_id="form-3", email="third@example.com", phone="2125550101"),
        token=source.plain_token,
    ).json()

    assert again["duplicate_of"] == original["id"]
    assert third["duplicate_of"] == original["id"]  # to the original, not to a duplicate
    assert Lead.objects.count() == 3


def test_the_same_contact_in_another_campaign_is_not_a_duplicate(api, source):
    CampaignFactory(slug="solar")
    CampaignFactory(slug="mortgage")
    api.post(LEADS, jane(campaign="solar"), token=source.plain_token)
    other = api.post(
        LEADS, jane(campaign="mortgage", external_id="form-2"), token=source.plain_token
    ).json()

    assert other["duplicate_of"] is None


def test_a_closed_lead_is_not_an_original(api, source):
    campaign = CampaignFactory(slug="solar")
    LeadFactory(
        source=source,
        campaign=campaign,
        email="jane@example.com",
        status="converted",
        distribution_state="done",
    )
    again = api.post(
        LEADS, jane(campaign="solar", external_id="form-2"), token=source.plain_token
    ).json()

    assert again["duplicate_of"] is None


# --- GET /api/v1/leads/{id} ------------------------------------------------------------


def test_a_source_reads_its_own_lead(api, source):
    lead_id = api.post(LEADS, jane(), token=source.plain_token).json()["id"]

    response = api.get(f"{LEADS}/{lead_id}", token=source.plain_token)

    assert response.status_code == 200
    body = response.json()
    assert {"id", "status", "owner", "rule", "outbound", "created_at"} <= set(body)
    assert (body["id"], body["status"], body["owner"]) == (lead_id, "pending", None)


def test_another_source_cannot_read_the_lead(api, source):
    lead_id = api.post(LEADS, jane(), token=source.plain_token).json()["id"]

    response = api.get(f"{LEADS}/{lead_id}", token=SourceFactory().plain_token)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_unknown_lead_is_404(api, source):
    assert api.get(f"{LEADS}/987654", token=source.plain_token).status_code == 404


def test_reading_without_a_token_is_401(api, source):
    lead_id = api.post(LEADS, jane(), token=source.plain_token).json()["id"]
    assert api.get(f"{LEADS}/{lead_id}").status_code == 401
    assert api.get(f"{LEADS}/{lead_id}", token="wrong").status_code == 401


def test_an_agent_reads_the_leads_it_owns_and_no_others(api, agent):
    mine = LeadFactory(owner=agent, assigned=True)
    theirs = LeadFactory(owner=AgentFactory(), assigned=True)
    nobodys = LeadFactory(unassigned=True)

    response = api.get(f"{LEADS}/{mine.pk}", token=agent.plain_token)
    assert response.status_code == 200
    assert (response.json()["owner"], response.json()["status"]) == (agent.email, "assigned")
    assert api.get(f"{LEADS}/{theirs.pk}", token=agent.plain_token).status_code == 404
    assert api.get(f"{LEADS}/{nobodys.pk}", token=agent.plain_token).status_code == 404


# --- schema and health -----------------------------------------------------------------


def test_the_openapi_schema_lists_the_lead_endpoints(api):
    response = api.get("/api/v1/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "post" in paths["/api/v1/leads"]
    assert "get" in paths["/api/v1/leads/{lead_id}"]


def test_healthz_answers_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_healthz_answers_503_naming_the_broker_when_it_is_unreachable(client, closed_port):
    with celery_publishing_to(f"redis://127.0.0.1:{closed_port}/0"):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "error"}
    assert set(body["errors"]) == {"broker"}
    assert str(closed_port) in body["errors"]["broker"]
