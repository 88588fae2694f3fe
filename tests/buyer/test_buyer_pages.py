"""The buyer's pages under /buyer/ (DESIGN §4 "The buyer's side"), as a buyer uses them:
sign in at the shared login, see the company's bought leads (search, filters, CSV), open
one, return it with a reason inside the window, see spend against budget, pause/resume."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from crm.models import Contract
from distribution.models import OutboundLead
from tests.factories import AgentFactory, UserFactory
from tests.factories.marketplace import (
    BuyerFactory,
    CompanyFactory,
    ContractFactory,
    MarketplaceLeadFactory,
    OutboundLeadFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    mine, theirs = CompanyFactory(name="Zonnig"), CompanyFactory(name="Rival")
    solar = ContractFactory(company=mine, name="Zonnig solar", price=Decimal("22.00"),
                            budget_month=Decimal("100.00"), cap_day=10)  # fmt: skip
    roofs = ContractFactory(company=mine, name="Zonnig roofs")
    rival = ContractFactory(company=theirs, name="Rival solar")
    ada = MarketplaceLeadFactory(first_name="Ada", last_name="Lovelace", postcode="1011AB",
                                 email="ada@example.nl", phone="+31 6 1234 5678")  # fmt: skip
    bob = MarketplaceLeadFactory(first_name="Bob", last_name="Bakker", postcode="3011CD")
    eve = MarketplaceLeadFactory(first_name="Eve", last_name="Elsewhere")
    return {
        "buyer": BuyerFactory(email="bea@zonnig.nl", company=mine),
        "solar": solar, "roofs": roofs,
        "ada": OutboundLeadFactory(contract=solar, lead=ada),
        "bob": OutboundLeadFactory(contract=roofs, lead=bob),
        "eve": OutboundLeadFactory(contract=rival, lead=eve),
    }  # fmt: skip


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_buyer_signs_in_at_the_shared_login_and_lands_on_the_buyer_pages(world):
    client = Client()
    answer = client.post(
        "/accounts/login/", {"username": "bea@zonnig.nl", "password": "pw"}, follow=True
    )
    assert answer.redirect_chain[-1][0] == "/buyer/"
    page = answer.content.decode()
    assert "Ada Lovelace" in page and "Bob Bakker" in page
    assert "Eve Elsewhere" not in page  # another company's lead
    assert client.get("/").url == "/buyer/"


def test_buyers_never_reach_the_admin_or_the_agent_pages(world):
    client = signed_in(world["buyer"])
    assert client.get("/agent/").status_code == 403
    admin = client.get("/admin/", follow=True)
    assert admin.status_code == 403  # signed in, but the admin is not theirs
    # a `next` into the admin after signing in is not followed for a buyer
    answer = Client().post(
        "/accounts/login/?next=/admin/",
        {"username": "bea@zonnig.nl", "password": "pw"},
    )
    assert answer.url == "/buyer/"


def test_agents_and_managers_are_refused_on_the_buyer_pages(world):
    manager = UserFactory(is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    for user in (AgentFactory(), manager):
        assert signed_in(user).get("/buyer/").status_code == 403
    assert "/accounts/login/" in Client().get("/buyer/").url


def test_search_and_filters_narrow_the_list(world):
    client = signed_in(world["buyer"])
    page = client.get("/buyer/", {"q": "1011"}).content.decode()
    assert "Ada Lovelace" in page and "Bob Bakker" not in page
    page = client.get("/buyer/", {"contract": world["roofs"].pk}).content.decode()
    assert "Bob Bakker" in page and "Ada Lovelace" not in page
    OutboundLead.objects.filter(pk=world["bob"].pk).update(return_status="requested")
    page = client.get("/buyer/", {"status": "return_requested"}).content.decode()
    assert "Bob Bakker" in page and "Ada Lovelace" not in page
    # another company's contract as a filter shows nothing of theirs
    page = client.get("/buyer/", {"contract": world["eve"].contract_id}).content.decode()
    assert "Eve Elsewhere" not in page and "No leads match these filters" in page


def test_the_csv_export_lists_the_filtered_leads_of_the_company(world):
    answer = signed_in(world["buyer"]).get("/buyer/leads.csv", {"contract": world["solar"].pk})
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert [(r["first_name"], r["email"], r["contract"], r["price"]) for r in rows] == [
        ("Ada", "ada@example.nl", "Zonnig solar", "22.00")
    ]
    everything = signed_in(world["buyer"]).get("/buyer/leads.csv").content.decode()
    assert "Bob" in everything and "Eve" not in everything


def test_a_buyer_opens_a_lead_and_returns_it_with_a_reason(world):
    client = signed_in(world["buyer"])
    url = f"/buyer/leads/{world['ada'].pk}/"
    page = client.get(url).content.decode()
    assert "+31 6 1234 5678" in page and "Return this lead" in page
    answer = client.post(f"{url}return", {"reason": "Number does not exist"}, follow=True)
    assert "Return requested; a manager will approve or deny it." in answer.content.decode()
    ada = OutboundLead.objects.get(pk=world["ada"].pk)
    assert (ada.return_status, ada.return_reason) == ("requested", "Number does not exist")
    assert 'name="reason"' not in client.get(url).content.decode()  # no second return


def test_the_return_form_is_gone_after_the_window_and_a_late_post_is_refused(world):
    Contract.objects.filter(pk=world["solar"].pk).update(return_window=dt.timedelta(days=1))
    client = signed_in(world["buyer"])
    url = f"/buyer/leads/{world['ada'].pk}/"
    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=5)):
        page = client.get(url).content.decode()
        assert 'name="reason"' not in page and "The return window closed" in page
        answer = client.post(f"{url}return", {"reason": "late"}, follow=True)
    assert "The return window of this lead closed" in answer.content.decode()
    assert OutboundLead.objects.get(pk=world["ada"].pk).return_status == ""


def test_another_companys_lead_is_404_on_the_pages(world):
    client = signed_in(world["buyer"])
    eve = world["eve"].pk
    assert client.get(f"/buyer/leads/{eve}/").status_code == 404
    assert client.post(f"/buyer/leads/{eve}/return", {"reason": "x"}).status_code == 404
    assert OutboundLead.objects.get(pk=eve).return_status == ""


def test_spend_against_budget_per_contract(world):
    OutboundLeadFactory(contract=world["solar"])  # a second sale: 44.00 of 100.00 this month
    page = signed_in(world["buyer"]).get("/buyer/contracts/").content.decode()
    assert "Zonnig solar" in page and "Zonnig roofs" in page and "Rival solar" not in page
    assert "44.00" in page and "100.00" in page and "44 %" in page
    assert 'id="spend-figures"' in page and "chart.umd.min.js" in page


def test_a_buyer_pauses_and_resumes_their_own_contract_but_not_another(world):
    client = signed_in(world["buyer"])
    solar = world["solar"]
    answer = client.post(f"/buyer/contracts/{solar.pk}/pause", follow=True)
    assert "Zonnig solar paused" in answer.content.decode()
    assert Contract.objects.get(pk=solar.pk).paused
    client.post(f"/buyer/contracts/{solar.pk}/resume")
    assert not Contract.objects.get(pk=solar.pk).paused
    rival = world["eve"].contract
    assert client.post(f"/buyer/contracts/{rival.pk}/pause").status_code == 404
    assert not Contract.objects.get(pk=rival.pk).paused
