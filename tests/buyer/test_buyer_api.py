"""The buyer API (DESIGN §7): a buyer's system pulls its company's leads once, oldest first,
and returns one within the contract's return window; another company's lead is 404."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from distribution.models import OutboundLead
from tests.factories.marketplace import (
    BuyerFactory,
    CompanyFactory,
    ContractFactory,
    MarketplaceLeadFactory,
    OutboundLeadFactory,
)

pytestmark = pytest.mark.django_db


def bearer(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {user.plain_token}")


@pytest.fixture
def two_companies():
    mine, theirs = CompanyFactory(name="Mine"), CompanyFactory(name="Theirs")
    my_contract = ContractFactory(company=mine, name="mine solar")
    their_contract = ContractFactory(company=theirs, name="their solar")
    lead = MarketplaceLeadFactory(first_name="Ada", last_name="Lovelace", email="ada@x.nl")
    a = OutboundLeadFactory(contract=my_contract, lead=lead)
    b = OutboundLeadFactory(contract=their_contract, lead=lead)  # the same lead, shared
    c = OutboundLeadFactory(contract=their_contract)
    return {"buyer": BuyerFactory(company=mine), "other": BuyerFactory(company=theirs),
            "mine": a, "shared": b, "theirs": c}  # fmt: skip


def test_a_buyer_lists_only_their_company_leads_in_the_documented_shape(two_companies):
    w = two_companies
    answer = bearer(w["buyer"]).get("/api/v1/buyer/leads")
    assert answer.status_code == 200
    body = answer.json()
    assert [row["id"] for row in body] == [w["mine"].pk]
    row = body[0]
    assert set(row) == {"id", "lead", "contract", "price", "status", "created_at"}
    assert row["contract"] == "mine solar" and row["status"] == "delivered"
    assert row["price"] == "10.00"
    assert set(row["lead"]) == {"id", "first_name", "last_name", "email", "phone", "postcode",
                                "city", "country", "company_name", "attributes"}  # fmt: skip
    assert row["lead"]["email"] == "ada@x.nl"
    other = [r["id"] for r in bearer(w["other"]).get("/api/v1/buyer/leads").json()]
    assert other == [w["shared"].pk, w["theirs"].pk]  # oldest first


def test_after_lists_only_newer_leads_so_each_is_pulled_once(two_companies):
    w = two_companies
    contract = w["mine"].contract
    newer = [OutboundLeadFactory(contract=contract) for _ in range(2)]
    client = bearer(w["buyer"])
    first = client.get("/api/v1/buyer/leads").json()
    assert [r["id"] for r in first] == [w["mine"].pk, *(o.pk for o in newer)]
    rest = client.get(f"/api/v1/buyer/leads?after={w['mine'].pk}").json()
    assert [r["id"] for r in rest] == [o.pk for o in newer]
    assert client.get(f"/api/v1/buyer/leads?after={newer[-1].pk}").json() == []


def test_rejected_failed_and_pending_deliveries_are_not_listed(two_companies):
    w = two_companies
    for status in ("rejected", "failed", "pending"):
        OutboundLeadFactory(contract=w["mine"].contract, status=status)
    returned = OutboundLeadFactory(contract=w["mine"].contract, status="returned")
    ids = [r["id"] for r in bearer(w["buyer"]).get("/api/v1/buyer/leads").json()]
    assert ids == [w["mine"].pk, returned.pk]


def test_a_buyer_returns_their_lead_and_a_manager_sees_the_request(two_companies):
    w = two_companies
    answer = bearer(w["buyer"]).post(
        f"/api/v1/buyer/leads/{w['mine'].pk}/return",
        {"reason": "wrong number"},
        content_type="application/json",
    )
    assert answer.status_code == 202, answer.content
    assert answer.json() == {"status": "return_requested"}
    mine = OutboundLead.objects.get(pk=w["mine"].pk)
    assert (mine.return_status, mine.return_reason) == ("requested", "wrong number")


def test_another_companys_lead_answers_404_and_is_untouched(two_companies):
    w = two_companies
    for outbound in (w["shared"], w["theirs"]):
        answer = bearer(w["buyer"]).post(
            f"/api/v1/buyer/leads/{outbound.pk}/return",
            {"reason": "not mine"},
            content_type="application/json",
        )
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
        assert OutboundLead.objects.get(pk=outbound.pk).return_status == ""


def test_after_the_return_window_a_return_answers_409_return_window_closed(two_companies):
    w = two_companies
    contract = w["mine"].contract
    contract.return_window = dt.timedelta(days=2)
    contract.save()
    url = f"/api/v1/buyer/leads/{w['mine'].pk}/return"
    with time_machine.travel(timezone.now() + dt.timedelta(days=2, minutes=1)):
        late = bearer(w["buyer"]).post(url, {"reason": "x"}, content_type="application/json")
    assert late.status_code == 409
    assert late.json()["code"] == "return_window_closed"
    assert OutboundLead.objects.get(pk=w["mine"].pk).return_status == ""
    with time_machine.travel(timezone.now() + dt.timedelta(days=1, hours=23)):
        in_time = bearer(w["buyer"]).post(url, {"reason": "x"}, content_type="application/json")
    assert in_time.status_code == 202


def test_the_default_return_window_is_seven_days(two_companies):
    w = two_companies
    url = f"/api/v1/buyer/leads/{w['mine'].pk}/return"
    with time_machine.travel(timezone.now() + dt.timedelta(days=7, minutes=1)):
        late = bearer(w["buyer"]).post(url, {"reason": "x"}, content_type="application/json")
    assert late.json()["code"] == "return_window_closed"


def test_agents_sources_and_strangers_are_refused_and_a_session_buyer_may_read(two_companies):
    from tests.factories import AgentFactory, SourceFactory

    agent, source = AgentFactory(), SourceFactory()
    for headers in ({}, {"HTTP_AUTHORIZATION": f"Bearer {agent.plain_token}"},
                    {"HTTP_AUTHORIZATION": f"Bearer {source.plain_token}"},
                    {"HTTP_AUTHORIZATION": "Bearer nope-nope-nope"}):  # fmt: skip
        assert Client(**headers).get("/api/v1/buyer/leads").status_code == 401
    session = Client()
    session.force_login(two_companies["buyer"])
    assert [r["id"] for r in session.get("/api/v1/buyer/leads").json()] == [
        two_companies["mine"].pk
    ]
    # a cross-site form posting with the buyer's cookie is refused (CSRF)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(two_companies["buyer"])
    answer = strict.post(
        f"/api/v1/buyer/leads/{two_companies['mine'].pk}/return",
        {"reason": "x"},
        content_type="application/json",
    )
    assert answer.status_code == 403


def test_the_buyer_endpoints_are_in_the_openapi_schema(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/buyer/leads"]
    assert "post" in paths["/api/v1/buyer/leads/{outbound_id}/return"]
