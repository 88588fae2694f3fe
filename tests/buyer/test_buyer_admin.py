"""Managers make a user a buyer of a company in the admin, and issue their API token."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import BuyerProfile
from tests.factories import UserFactory
from tests.factories.marketplace import BuyerFactory, CompanyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager() -> Client:
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Managers"))
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_makes_a_user_a_buyer_who_then_lands_on_the_buyer_pages(manager):
    company = CompanyFactory(name="Zonnig")
    bea = UserFactory(email="bea@zonnig.nl")
    answer = manager.post(
        "/admin/accounts/buyerprofile/add/", {"user": bea.pk, "company": company.pk}
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert BuyerProfile.objects.get(user=bea).company == company
    client = Client()
    assert (
        client.post("/accounts/login/", {"username": "bea@zonnig.nl", "password": "pw"}).url
        == "/buyer/"
    )


def test_a_manager_issues_a_new_token_shown_once_and_the_old_one_stops(manager):
    buyer = BuyerFactory()
    old = buyer.plain_token
    answer = manager.post(
        "/admin/accounts/buyerprofile/",
        {"action": "issue_tokens", "_selected_action": [buyer.buyer.pk]},
        follow=True,
    )
    token = re.search(r"new API token (buy_\S+) \(shown once\)", answer.content.decode())
    assert token
    assert Client(HTTP_AUTHORIZATION=f"Bearer {old}").get("/api/v1/buyer/leads").status_code == 401
    fresh = Client(HTTP_AUTHORIZATION=f"Bearer {token[1]}")
    assert fresh.get("/api/v1/buyer/leads").status_code == 200
