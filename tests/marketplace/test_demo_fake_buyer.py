"""`make run`'s fake buyer (issue 12 item 5): one demo contract delivers by webhook to an
endpoint the demo serves itself; off outside the embedded run."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from config.signing import signature_header
from distribution.demo import fake_buyer as demo
from distribution.management.commands.seed_demo import demo_config


def _post(body: dict[str, Any], *, secret: str = demo.DEMO_SECRET) -> Any:
    raw = json.dumps(body).encode()
    request = RequestFactory().post(
        "/demo/fake-buyer/",
        data=raw,
        content_type="application/json",
        headers={
            "Leadrouter-Signature": signature_header(
                secret=secret, timestamp=int(time.time()), body=raw
            ),
            "Idempotency-Key": str(body["outbound_id"]),
        },
    )
    return demo.fake_buyer(request)


def test_the_fake_buyer_accepts_most_rejects_some_and_checks_the_signature() -> None:
    answers = [json.loads(_post({"outbound_id": i}).content)["status"] for i in range(1, 101)]
    assert 5 <= answers.count("rejected") <= 40 and answers.count("accepted") >= 60
    rejected = next(i for i in range(1, 101) if demo.rejects(i))
    again = json.loads(_post({"outbound_id": rejected}).content)
    assert again == {"status": "rejected", "reason": "duplicate in our CRM"}  # same on retry
    assert _post({"outbound_id": 1}, secret="forged").status_code == 401


def test_only_the_embedded_run_routes_it_and_points_a_demo_contract_at_it(settings: Any) -> None:
    with pytest.raises(NoReverseMatch):
        reverse("demo-fake-buyer")  # off in every other run
    settings.DEMO_FAKE_BUYER = False
    plain = {c["name"]: c for c in demo_config()["contracts"]}
    assert "delivery" not in plain[demo.DEMO_CONTRACT]
    settings.DEMO_FAKE_BUYER = True
    settings.SITE_URL = "http://127.0.0.1:8000"
    hooked = {c["name"]: c for c in demo_config()["contracts"]}[demo.DEMO_CONTRACT]
    assert hooked["delivery"]["url"] == "http://127.0.0.1:8000/demo/fake-buyer/"
    assert hooked["delivery"]["accept"] == {"field": "status", "in": ["accepted"]}


@pytest.mark.django_db
def test_the_demo_setup_applies_with_the_webhook_contract(settings: Any) -> None:
    from crm.models import Contract
    from distribution.configuration import config_apply

    settings.DEMO_FAKE_BUYER = True
    config_apply(demo_config())
    c = Contract.objects.get(name=demo.DEMO_CONTRACT)
    assert (c.delivery_method, c.delivery_secret) == ("webhook", demo.DEMO_SECRET)
    assert c.delivery_url.endswith("/demo/fake-buyer/")
