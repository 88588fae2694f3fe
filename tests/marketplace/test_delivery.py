"""Delivery to buyers (DESIGN §4, issue 12 items 2, 5, 7): webhooks through a real HTTP
server this test starts on 127.0.0.1, e-mails through Django's outbox, the retry timers run
by `deliver_pending`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from config.signing import signature_verify
from distribution import services
from distribution.models import DeliveryAttempt, DeliveryStatus, OutboundLead
from distribution.services.marketplace import delivery
from tests.marketplace.conftest import arrive

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"


class FakeBuyer:
    """A buyer's endpoint: records every request; answers from a script of
    (status, body, delay seconds), repeating the last one."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, Any, float]] = [(200, {"ok": True}, 0.0)]
        self.redirect_to: str | None = None
        buyer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                buyer.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": raw}
                )
                if buyer.redirect_to and len(buyer.requests) == 1:
                    self.send_response(307)
                    self.send_header("Location", buyer.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                n = len(buyer.requests) - 1
                status, body, delay = buyer.script[min(n, len(buyer.script) - 1)]
                if delay:
                    time.sleep(delay)
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/leads"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def json(self, i: int = -1) -> Any:
        return json.loads(self.requests[i]["body"])


@pytest.fixture
def buyer(settings: Any) -> Iterator[FakeBuyer]:
    settings.DELIVERY_ALLOW_PRIVATE_NETWORKS = True  # the fake buyer is on 127.0.0.1
    server = FakeBuyer()
    yield server
    server.stop()


@pytest.fixture
def market(workflow: Callable[..., Any]) -> Any:
    return workflow(rules=[("qs", 5)], mode="on_arrival")


def sell(new_lead: Callable[..., Any], capture: Any, **fields: Any) -> Any:
    """A lead arrives and is sold; the delivery task queued on commit runs (eager)."""
    lead = new_lead(**fields)
    with capture(execute=True):
        arrive(lead)
    return lead


def webhook(contract: Callable[..., Any], url: str, **fields: Any) -> Any:
    fields.setdefault("delivery_secret", SECRET)
    return contract(delivery_method="webhook", delivery_url=url, **fields)


def test_webhook_sends_the_default_body_signed_with_headers_and_idempotency_key(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = webhook(contract, buyer.url, name="Solar Buyer", delivery_headers={"X-Api-Key": "k-123"})
    lead = sell(
        new_lead,
        django_capture_on_commit_callbacks,
        first_name="Ada",
        email="ada@example.com",
        attributes={"roof": "south"},
    )
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert len(buyer.requests) == 1
    sent = buyer.requests[0]
    body = buyer.json()
    assert body["first_name"] == "Ada" and body["email"] == "ada@example.com"
    assert body["attributes"] == {"roof": "south"}
    assert body["lead_id"] == lead.pk and body["outbound_id"] == outbound.pk
    assert body["contract"] == "Solar Buyer" and body["price"] == "10.00"
    assert body["campaign"] == lead.campaign.slug
    assert sent["headers"]["X-Api-Key"] == "k-123"
    assert sent["headers"]["Idempotency-Key"] == str(outbound.pk)
    assert sent["headers"]["Content-Type"] == "application/json"
    # verified as a receiver does, with the contract's secret, over the raw body
    signature_verify(
        header=sent["headers"]["Leadrouter-Signature"],
        secret=SECRET,
        body=sent["body"],
        now=int(time.time()),
    )
    outbound.refresh_from_db()
    assert outbound.status == DeliveryStatus.DELIVERED
    log = DeliveryAttempt.objects.get(outbound=outbound)
    assert (log.attempt, log.outcome, log.status_code) == (1, "delivered", 200)
    assert log.request_headers["X-Api-Key"] == "***"  # no secrets in the log
    assert json.loads(log.request_body)["first_name"] == "Ada"
    assert json.loads(log.response_body) == {"ok": True}


def test_a_wrong_secret_does_not_verify(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from config.signing import SignatureError

    webhook(contract, buyer.url)
    sell(new_lead, django_capture_on_commit_callbacks)
    sent = buyer.requests[0]
    with pytest.raises(SignatureError):
        signature_verify(
            header=sent["headers"]["Leadrouter-Signature"],
            secret="another",
            body=sent["body"],
            now=int(time.time()),
        )


def test_mapping_names_their_fields_literals_and_attributes_in_a_form_body(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    webhook(
        contract,
        buyer.url,
        delivery_format="form",
        delivery_mapping={"fname": "first_name", "src": "=leadrouter", "roof_side": "roof"},
    )
    sell(
        new_lead,
        django_capture_on_commit_callbacks,
        first_name="Grace",
        attributes={"roof": "west"},
    )
    sent = buyer.requests[0]
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(sent["body"].decode())
    assert form == {"fname": ["Grace"], "src": ["leadrouter"], "roof_side": ["west"]}


def test_accept_rule_and_reason_field_decide_a_2xx(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = webhook(
        contract,
        buyer.url,
        delivery_accept_field="result.status",
        delivery_accept_in=["accepted"],
        delivery_reason_field="result.why",
    )
    buyer.script = [(200, {"result": {"status": "duplicate", "why": "already bought"}}, 0)]
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert (outbound.status, outbound.delivery_reason) == ("rejected", "already bought")
    assert outbound.delivery_due_at is None and len(buyer.requests) == 1  # never retried

    buyer.script = [(200, {"result": {"status": "accepted"}}, 0)]
    lead2 = sell(new_lead, django_capture_on_commit_callbacks)
    assert OutboundLead.objects.get(lead=lead2, contract=c).status == "delivered"


def test_a_4xx_is_rejected_as_http_status_and_not_retried(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = webhook(contract, buyer.url)
    buyer.script = [(422, {"error": "bad postcode"}, 0)]
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert (outbound.status, outbound.delivery_reason) == ("rejected", "http_422")
    assert services.deliver_pending(now=timezone.now() + timedelta(days=1)) == {}
    assert len(buyer.requests) == 1


def test_5xx_is_retried_after_retry_after_then_4x_and_delivered_with_the_same_key(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = webhook(contract, buyer.url)  # retry_after 30 s, retries 3 (the defaults)
    buyer.script = [(503, "busy", 0), (500, "oops", 0), (200, {"ok": True}, 0)]
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert outbound.status == "pending" and outbound.delivery_attempts == 1
    first = outbound.delivery_due_at
    assert first is not None

    assert services.deliver_pending(now=first - timedelta(seconds=1)) == {}  # not due yet
    assert services.deliver_pending(now=first) == {"retried": 1}
    outbound.refresh_from_db()
    assert outbound.delivery_due_at == first + timedelta(seconds=120)  # 4 × retry_after
    assert services.deliver_pending(now=outbound.delivery_due_at) == {"delivered": 1}
    outbound.refresh_from_db()
    assert outbound.status == "delivered"
    keys = {r["headers"]["Idempotency-Key"] for r in buyer.requests}
    assert len(buyer.requests) == 3 and keys == {str(outbound.pk)}
    outcomes = list(
        DeliveryAttempt.objects.filter(outbound=outbound)
        .order_by("attempt")
        .values_list("attempt", "outcome", "reason")
    )
    assert outcomes == [
        (1, "retried", "http_503"),
        (2, "retried", "http_500"),
        (3, "delivered", ""),
    ]


def test_retries_exhausted_end_failed_timeouts_count_as_retryable(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = webhook(
        contract,
        buyer.url,
        delivery_retries=2,
        delivery_retry_after=timedelta(seconds=1),
        delivery_timeout=timedelta(milliseconds=300),
    )
    buyer.script = [(200, {}, 1.0), (429, "slow down", 0), (500, "down", 0)]
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert outbound.status == "pending"
    later = timezone.now() + timedelta(hours=1)
    services.deliver_pending(now=later)
    services.deliver_pending(now=later + timedelta(hours=1))
    outbound.refresh_from_db()
    assert (outbound.status, outbound.delivery_reason) == ("failed", "http_500")
    reasons = list(
        DeliveryAttempt.objects.filter(outbound=outbound)
        .order_by("attempt")
        .values_list("outcome", "reason")
    )
    assert reasons == [("retried", "timeout"), ("retried", "http_429"), ("failed", "http_500")]
    assert services.deliver_pending(now=later + timedelta(days=1)) == {}  # settled: no more


def test_a_connection_error_is_retried(
    settings: Any,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DELIVERY_ALLOW_PRIVATE_NETWORKS = True
    closed = FakeBuyer()
    url = closed.url
    closed.stop()  # nothing listens there any more
    c = webhook(contract, url)
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert outbound.status == "pending"
    assert DeliveryAttempt.objects.get(outbound=outbound).reason == "connection_error"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/leads",
        "http://10.1.2.3/leads",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:{port}/leads",  # a name resolving to loopback
        "http://[::1]:{port}/leads",
    ],
)
def test_url_guard_refuses_non_public_addresses_without_sending(
    url: str,
    buyer: FakeBuyer,
    settings: Any,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DELIVERY_ALLOW_PRIVATE_NETWORKS = False
    port = buyer.server.server_address[1]
    c = webhook(contract, url.format(port=port))
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert (outbound.status, outbound.delivery_reason) == ("failed", "url_not_public")
    assert buyer.requests == []


def test_url_guard_resolves_names_first(monkeypatch: Any, settings: Any) -> None:
    settings.DELIVERY_ALLOW_PRIVATE_NETWORKS = False
    answers = {"buyer.example": "10.0.0.7", "metadata.example": "169.254.169.254"}

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(2, 1, 6, "", (answers.get(host, "93.184.216.34"), port))]

    monkeypatch.setattr(delivery.socket, "getaddrinfo", fake)
    for host in answers:
        with pytest.raises(delivery.NotPublic):
            delivery.url_guard(f"https://{host}/hook")
    delivery.url_guard("https://public.example/hook")  # a public address passes


def test_url_guard_checks_every_redirect(
    buyer: FakeBuyer,
    monkeypatch: Any,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    real = delivery.url_guard

    def guard(url: str) -> None:  # the fake buyer itself is allowed; everything else is real
        if not url.startswith(buyer.url):
            with monkeypatch.context() as m:
                m.setattr(delivery.settings, "DELIVERY_ALLOW_PRIVATE_NETWORKS", False)
                real(url)

    monkeypatch.setattr(delivery, "url_guard", guard)
    buyer.redirect_to = "http://169.254.169.254/latest/meta-data/"
    c = webhook(contract, buyer.url)
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert (outbound.status, outbound.delivery_reason) == ("failed", "url_not_public")
    assert len(buyer.requests) == 1  # the redirect was not followed


def test_a_redirect_to_an_allowed_url_is_followed_with_the_same_body(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    buyer.redirect_to = buyer.url + "/v2"
    c = webhook(contract, buyer.url)
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    assert OutboundLead.objects.get(lead=lead, contract=c).status == "delivered"
    assert [r["path"] for r in buyer.requests] == ["/leads", "/leads/v2"]
    assert buyer.requests[0]["body"] == buyer.requests[1]["body"]


def test_email_delivery_sends_text_and_html_listing_the_lead(
    market: Any, contract: Any, new_lead: Any, django_capture_on_commit_callbacks: Any
) -> None:
    c = contract(name="Mail Buyer", delivery_method="email", delivery_email="buyer@example.com")
    lead = sell(
        new_lead,
        django_capture_on_commit_callbacks,
        first_name="Linus",
        phone="+31201234567",
        attributes={"roof": "flat"},
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["buyer@example.com"]
    assert "Linus" in message.body and "+31201234567" in message.body and "flat" in message.body
    html = [content for content, kind in message.alternatives if kind == "text/html"]
    assert len(html) == 1 and "Linus" in html[0] and "<table" in html[0]
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert outbound.status == "delivered"
    assert DeliveryAttempt.objects.get(outbound=outbound).method == "email"


def test_portal_is_delivered_when_sold_and_sends_nothing(
    market: Any, contract: Any, new_lead: Any, django_capture_on_commit_callbacks: Any
) -> None:
    c = contract()
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert outbound.status == "delivered" and outbound.delivery_due_at is None
    assert not DeliveryAttempt.objects.exists() and mail.outbox == []


def test_deliver_pending_command_sends_what_is_due_in_process(
    buyer: FakeBuyer, market: Any, contract: Any, new_lead: Any
) -> None:
    c = webhook(contract, buyer.url)
    lead = new_lead()
    arrive(lead)  # the sale's on-commit task never ran (no worker, as for the command)
    outbound = OutboundLead.objects.get(lead=lead, contract=c)
    assert outbound.status == "pending" and buyer.requests == []
    out = _command()
    assert "1 delivery attempt(s): 1 delivered." in out
    outbound.refresh_from_db()
    assert outbound.status == "delivered" and len(buyer.requests) == 1
    assert "0 delivery attempt(s)." in _command()  # nothing due any more


def _command() -> str:
    import io

    out = io.StringIO()
    call_command("deliver_pending", stdout=out)
    return out.getvalue()


def test_cherry_picked_leads_are_delivered_too(
    buyer: FakeBuyer,
    contract: Any,
    new_lead: Any,
    manager: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    c = webhook(contract, buyer.url)
    lead = new_lead()
    with django_capture_on_commit_callbacks(execute=True):
        outbound = services.lead_cherry_pick(lead_id=lead.pk, contract_id=c.pk, actor=manager)
    outbound.refresh_from_db()
    assert outbound.status == "delivered" and buyer.json()["outbound_id"] == outbound.pk


def test_beat_runs_deliver_pending_on_the_timers_lane(settings: Any) -> None:
    from distribution.periodic import PERIODIC_TASKS

    assert "distribution.deliver_pending" in {p.task for p in PERIODIC_TASKS}
    assert settings.LANE_OF_TASK["distribution.deliver_pending"] == "timers"
    assert settings.LANE_OF_TASK["distribution.deliver_outbound"] == "timers"


def test_send_a_test_lead_returns_the_request_and_the_answer_and_stores_nothing(
    buyer: FakeBuyer, contract: Any
) -> None:
    c = webhook(contract, buyer.url)
    buyer.script = [(201, {"id": "abc"}, 0)]
    sent = services.outbound_test_send(contract_id=c.pk)
    assert (sent.outcome, sent.status) == ("delivered", 201)
    assert json.loads(sent.answer) == {"id": "abc"}
    assert buyer.json()["attributes"] == {"test": True}
    assert not DeliveryAttempt.objects.exists()


def test_the_lead_api_shows_a_rejected_outbound_lead_with_its_reason(
    buyer: FakeBuyer,
    market: Any,
    contract: Any,
    new_lead: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from distribution.selectors import outbound_for_lead

    webhook(contract, buyer.url, name="Picky")
    buyer.script = [(410, "gone", 0)]
    lead = sell(new_lead, django_capture_on_commit_callbacks)
    [row] = outbound_for_lead(lead)
    assert (row["contract"], row["status"], row["reason"]) == ("Picky", "rejected", "http_410")
