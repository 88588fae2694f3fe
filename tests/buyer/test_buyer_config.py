"""Config as code for buyers (DESIGN §7 `buyers`, `contracts[].return_window`): apply,
sign in, export, apply back unchanged."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.contrib.auth import authenticate
from django.test import Client

from accounts.models import BuyerProfile
from crm.models import Contract
from distribution.configuration import ConfigError, config_apply, config_export

pytestmark = pytest.mark.django_db

CONFIG = {
    "campaigns": [{"slug": "solar", "name": "Solar"}],
    "companies": [{"name": "Zonnig"}, {"name": "Rival"}],
    "contracts": [
        {
            "name": "Zonnig solar",
            "company": "Zonnig",
            "campaign": "solar",
            "price": 20,
            "return_window": "3d",
        },
        {"name": "Rival solar", "company": "Rival", "campaign": "solar", "price": 20},
    ],
    "buyers": [
        {
            "email": "Bea@Zonnig.nl",
            "name": "Bea Buyer",
            "company": "Zonnig",
            "token": "buyer-token-bea-00001",
            "password": "s3cret-pass",
        },
    ],
}


def test_a_buyer_from_the_file_signs_in_and_uses_the_api_with_its_token():
    report = config_apply(CONFIG)
    assert report.total_changes > 0
    user = authenticate(username="bea@zonnig.nl", password="s3cret-pass")
    assert user is not None and not user.is_staff
    assert user.buyer.company.name == "Zonnig" and user.display_name == "Bea Buyer"
    api = Client(HTTP_AUTHORIZATION="Bearer buyer-token-bea-00001")
    assert api.get("/api/v1/buyer/leads").status_code == 200


def test_return_window_applies_defaults_to_seven_days_and_round_trips():
    config_apply(CONFIG)
    assert Contract.objects.get(name="Zonnig solar").return_window == timedelta(days=3)
    assert Contract.objects.get(name="Rival solar").return_window == timedelta(days=7)
    data = yaml.safe_load(config_export(only=["campaigns", "companies", "contracts", "buyers"]))
    by_name = {c["name"]: c for c in data["contracts"]}
    assert by_name["Zonnig solar"]["return_window"] == "3d"
    assert "return_window" not in by_name["Rival solar"]  # the default
    assert data["buyers"] == [
        {
            "email": "bea@zonnig.nl",
            "name": "Bea Buyer",
            "company": "Zonnig",
            "token_sha256": BuyerProfile.objects.get().api_token_hash,
        }
    ]
    assert config_apply(data).total_changes == 0
    assert config_apply(CONFIG).total_changes == 0


def test_moving_a_buyer_to_another_company_is_reported_and_applied():
    config_apply(CONFIG)
    moved = {**CONFIG, "buyers": [{**CONFIG["buyers"][0], "company": "Rival"}]}
    report = config_apply(moved)
    assert report.total_changes == 1
    assert BuyerProfile.objects.get().company.name == "Rival"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"buyers": [{"email": "x@y.nl", "company": "Nobody"}]}, "buyers[0].company: no company"),
        ({"buyers": [{"email": "not-an-email", "company": "Zonnig"}]}, "not a valid e-mail"),
        ({"buyers": [{"email": "x@y.nl", "company": "Zonnig", "token": "short"}]}, "16"),
        (
            {
                "contracts": [
                    {
                        "name": "C",
                        "company": "Zonnig",
                        "campaign": "solar",
                        "price": 1,
                        "return_window": "a week",
                    }
                ]
            },
            "contracts[0].return_window",
        ),
    ],
)
def test_errors_name_their_key_path_and_nothing_is_applied(patch, message):
    with pytest.raises(ConfigError) as err:
        config_apply({**CONFIG, **patch})
    assert message in str(err.value)
    assert not BuyerProfile.objects.exists()


def test_the_demo_buyer_signs_in_lands_on_the_buyer_pages_and_sees_bought_leads():
    from django.core.management import call_command

    from distribution.management.commands.run_embedded import DEMO_LOGINS

    call_command("seed_demo", "--leads", "120", verbosity=0)
    (email, password), *_ = [(e, p) for role, e, p in DEMO_LOGINS if role == "buyer"]
    client = Client()
    answer = client.post("/accounts/login/", {"username": email, "password": password})
    assert answer.url == "/buyer/"
    page = client.get("/buyer/").content.decode()
    assert "Zonnig standard" in page and 'id="bought-leads"' in page
    api = Client(HTTP_AUTHORIZATION="Bearer demo-buyer-zonnig-0001")
    rows = api.get("/api/v1/buyer/leads").json()
    assert rows and {r["contract"] for r in rows} <= {"Zonnig standard", "Zonnig insulation"}


def test_an_agent_cannot_be_given_the_buyer_role_under_agents():
    """Buyers belong to a company: they are listed under `buyers`, not as an agent role."""
    with pytest.raises(ConfigError) as err:
        config_apply({"agents": [{"email": "a@b.nl", "role": "buyer"}]})
    assert "agents[0].role: must be one of agent, manager, admin" in str(err.value)
