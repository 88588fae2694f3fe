"""`apply_config` / `export_config` for companies, contracts and workflows (DESIGN §7)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import yaml

from crm.models import Company, Contract
from distribution.configuration import ConfigError, config_apply, config_export
from distribution.models import Workflow

pytestmark = pytest.mark.django_db

CONFIG = {
    "campaigns": [{"slug": "solar", "name": "Solar"}],
    "companies": [
        {
            "name": "Acme",
            "locations": [
                {"name": "HQ", "latitude": 52.37, "longitude": 4.9},
                {"name": "South", "latitude": 51.9, "longitude": 4.5},
            ],
        },
        {"name": "Beta", "locations": []},
    ],
    "contracts": [
        {
            "name": "Acme solar",
            "company": "Acme",
            "campaign": "solar",
            "price": 12.5,
            "quality_score": 8,
            "trial": False,
            "active": True,
            "starts": "2026-01-01",
            "ends": "2026-12-31",
            "radius_km": 40,
            "max_share_count": 3,
            "caps": {"day": 10, "week": 40, "month": 100},
            "budget": {"month": 900},
            "timezone": "Europe/Amsterdam",
            "max_lead_age": "2d",
            "min_lead_score": 20,
            "group": "Acme holding",
            "delivery": [{"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}],
        },
        {
            "name": "Beta trial",
            "company": "Beta",
            "campaign": "solar",
            "price": 0,
            "quality_score": 3,
            "trial": True,
            "max_share_count": 1,
        },
    ],
    "workflows": [
        {
            "campaign": "solar",
            "mode": "window",
            "window": {"duration": "1d", "every": "15m"},
            "max_multiplication": 3,
            "min_contracts": 1,
            "min_turnover": 10,
            "batch_optimal": False,
            "selection_rules": [
                {"mode": "qs", "take": 1},
                {"mode": "turnover", "take": 2, "min_turnover": 15},
            ],
        },
    ],
}


def test_apply_creates_companies_contracts_and_workflows():
    report = config_apply(CONFIG)
    assert report.counts["contracts"].created == 2
    acme = Contract.objects.select_related("group").get(name="Acme solar")
    assert (acme.price, acme.cap_week, acme.budget_month, acme.group.name) == (
        Decimal("12.50"),
        40,
        Decimal("900"),
        "Acme holding",
    )
    assert acme.max_lead_age == timedelta(days=2)
    assert acme.delivery_intervals.count() == 2
    assert Company.objects.get(name="Acme").locations.count() == 2
    workflow = Workflow.objects.get(campaign__slug="solar")
    assert (workflow.mode, workflow.window_duration, workflow.recheck_every) == (
        "window",
        timedelta(days=1),
        timedelta(minutes=15),
    )
    assert [
        (r.position, r.mode, r.take, r.min_turnover)
        for r in workflow.selection_rules.order_by("position")
    ] == [(1, "qs", 1, None), (2, "turnover", 2, Decimal("15"))]


def test_export_applies_back_unchanged_and_is_idempotent():
    config_apply(CONFIG)
    assert config_apply(CONFIG).total_changes == 0
    exported = config_export(only=["campaigns", "companies", "contracts", "workflows"])
    data = yaml.safe_load(exported)
    assert [c["name"] for c in data["contracts"]] == ["Acme solar", "Beta trial"]
    assert data["workflows"][0]["selection_rules"][1] == {
        "mode": "turnover",
        "take": 2,
        "min_turnover": 15,
    }
    assert config_apply(data).total_changes == 0


def test_nested_lists_are_replaced_and_changes_reported():
    config_apply(CONFIG)
    changed = yaml.safe_load(yaml.safe_dump(CONFIG))
    changed["companies"][0]["locations"] = [{"name": "HQ", "latitude": 52.0, "longitude": 4.9}]
    changed["workflows"][0]["selection_rules"] = [{"mode": "distance", "take": 3}]
    report = config_apply(changed)
    assert any("Acme (locations)" in line for line in report.details)
    assert any("solar (selection_rules)" in line for line in report.details)
    assert list(Company.objects.get(name="Acme").locations.values_list("name", "latitude")) == [
        ("HQ", 52.0)
    ]
    assert list(Workflow.objects.get().selection_rules.values_list("mode", "take")) == [
        ("distance", 3)
    ]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"contracts": [{"name": "x", "company": "Nobody", "campaign": "solar", "price": 1}]},
            "contracts[0].company: no company 'Nobody'",
        ),
        (
            {"contracts": [{"name": "x", "company": "Acme", "campaign": "solar", "price": -1}]},
            "contracts[0].price: must not be negative",
        ),
        (
            {
                "contracts": [
                    {
                        "name": "x",
                        "company": "Acme",
                        "campaign": "solar",
                        "price": 1,
                        "max_share_count": 0,
                    }
                ]
            },
            "contracts[0].max_share_count: must be at least 1",
        ),
        (
            {
                "workflows": [
                    {"campaign": "solar", "selection_rules": [{"mode": "best", "take": 1}]}
                ]
            },
            "workflows[0].selection_rules[0].mode: 'best' is not one of",
        ),
        (
            {"workflows": [{"campaign": "solar", "mode": "window", "window": {"every": "soon"}}]},
            "workflows[0].window.every:",
        ),
        (
            {"companies": [{"name": "Acme", "locations": [{"latitude": 91, "longitude": 0}]}]},
            "companies[0].locations[0].latitude: must be between -90",
        ),
    ],
)
def test_errors_name_their_key_path_and_nothing_is_applied(patch, message):
    config_apply({"campaigns": CONFIG["campaigns"], "companies": CONFIG["companies"]})
    before = Contract.objects.count(), Workflow.objects.count()
    with pytest.raises(ConfigError) as error:
        config_apply({**{k: CONFIG[k] for k in ("campaigns", "companies")}, **patch})
    assert any(m.startswith(message) for m in error.value.messages), error.value.messages
    assert (Contract.objects.count(), Workflow.objects.count()) == before


def test_prune_deactivates_contracts_and_removes_workflows_not_named():
    config_apply(CONFIG)
    trimmed = {"contracts": [CONFIG["contracts"][0]], "workflows": []}
    config_apply(trimmed, prune=True)
    assert not Contract.objects.get(name="Beta trial").active
    assert not Workflow.objects.exists()
