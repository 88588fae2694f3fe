"""`contracts[].delivery` and `contracts[].delivery_hours` in apply_config / export_config
(DESIGN §7, issue 12 item 1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from crm.models import Contract
from distribution.configuration import ConfigError, config_apply, config_export

pytestmark = pytest.mark.django_db

BASE = {
    "campaigns": [{"slug": "solar", "name": "Solar"}],
    "companies": [{"name": "Acme", "locations": []}],
}
HOURS = [{"days": ["mon"], "start": "09:00", "end": "17:00"}]
WEBHOOK = {
    "method": "webhook",
    "url": "https://buyer.example/leads",
    "format": "form",
    "headers": {"X-Api-Key": "k-1"},
    "mapping": {"fname": "first_name", "src": "=leadrouter"},
    "secret": "whsec_1",
    "timeout": "5s",
    "accept": {"field": "result.status", "in": ["accepted", "ok"]},
    "reason_field": "result.reason",
    "retries": 5,
    "retry_after": "1m",
}


def contract(**fields: object) -> dict[str, object]:
    return {"name": "Acme solar", "company": "Acme", "campaign": "solar", "price": 10, **fields}


def test_delivery_settings_apply_and_export_round_trip() -> None:
    config_apply({**BASE, "contracts": [contract(delivery=WEBHOOK, delivery_hours=HOURS)]})
    c = Contract.objects.get()
    assert (c.delivery_method, c.delivery_url, c.delivery_format) == (
        "webhook",
        "https://buyer.example/leads",
        "form",
    )
    assert c.delivery_headers == {"X-Api-Key": "k-1"}
    assert c.delivery_mapping == {"fname": "first_name", "src": "=leadrouter"}
    assert (c.delivery_secret, c.delivery_timeout, c.delivery_retry_after) == (
        "whsec_1",
        timedelta(seconds=5),
        timedelta(minutes=1),
    )
    assert (c.delivery_accept_field, c.delivery_accept_in) == ("result.status", ["accepted", "ok"])
    assert (c.delivery_reason_field, c.delivery_retries) == ("result.reason", 5)
    assert c.delivery_intervals.count() == 1

    data = yaml.safe_load(config_export(only=["contracts"]))
    row = data["contracts"][0]
    assert row["delivery"] == WEBHOOK
    assert row["delivery_hours"] == HOURS
    assert config_apply({**BASE, **data}).total_changes == 0


def test_a_list_under_delivery_still_applies_as_hours_and_exports_as_delivery_hours() -> None:
    config_apply({**BASE, "contracts": [contract(delivery=HOURS)]})
    c = Contract.objects.get()
    assert c.delivery_intervals.count() == 1 and c.delivery_method == "portal"
    row = yaml.safe_load(config_export(only=["contracts"]))["contracts"][0]
    assert row["delivery_hours"] == HOURS and "delivery" not in row  # portal: the default


def test_email_delivery_and_changes_are_reported() -> None:
    config_apply({**BASE, "contracts": [contract()]})
    report = config_apply(
        {**BASE, "contracts": [contract(delivery={"method": "email", "email": "b@example.com"})]}
    )
    assert any("delivery_method" in line for line in report.details), report.details
    c = Contract.objects.get()
    assert (c.delivery_method, c.delivery_email) == ("email", "b@example.com")
    row = yaml.safe_load(config_export(only=["contracts"]))["contracts"][0]
    assert row["delivery"] == {"method": "email", "email": "b@example.com"}


@pytest.mark.parametrize(
    ("delivery", "message"),
    [
        ({"method": "fax"}, "contracts[0].delivery.method: 'fax' is not one of"),
        ({"method": "webhook"}, "contracts[0].delivery.url: is required"),
        ({"method": "webhook", "url": "ftp://x"}, "contracts[0].delivery.url: 'ftp://x' is not"),
        ({"method": "email"}, "contracts[0].delivery.email: is required"),
        ({"method": "portal", "colour": 1}, "contracts[0].delivery.colour: unknown key"),
        ({"accept": {"in": [1]}}, "contracts[0].delivery.accept.field: is required"),
        ({"retry_after": "soon"}, "contracts[0].delivery.retry_after:"),
    ],
)
def test_bad_delivery_settings_name_their_path(delivery: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        config_apply({**BASE, "contracts": [contract(delivery=delivery)]})
    assert any(m.startswith(message) for m in error.value.messages), error.value.messages
    assert not Contract.objects.exists()


def test_hours_given_twice_are_refused() -> None:
    with pytest.raises(ConfigError) as error:
        config_apply({**BASE, "contracts": [contract(delivery=HOURS, delivery_hours=HOURS)]})
    assert any("hours are given twice" in m for m in error.value.messages)
