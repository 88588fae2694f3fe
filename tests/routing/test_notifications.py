"""Notifications people can trust (issue 11): the telephony webhook signed, retried on 5xx /
timeouts / connection errors and logged per attempt; TCPA hours in the lead's own zone (its
phone number or country when no attribute says); e-mails text + HTML, retried when SMTP
fails, the taken-back one sent, links to the site's address, times in the agent's zone.

The webhook receiver is a real HTTP server on 127.0.0.1, started and stopped by each test;
it checks the signature the way a receiver would (HMAC-SHA256 over "<t>.<raw body>").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import smtplib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from distribution.models import WebhookAttempt
from distribution.services import notify
from distribution.services.claims import offer_claim
from distribution.services.sla import leads_reassign_missed_sla
from distribution.tasks.routing import send_webhook
from tests.routing.conftest import make_pool, make_rule, make_schedule

pytestmark = pytest.mark.usefixtures("eager_retries")
UTC = dt.UTC
MONDAY_10 = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # winter: Amsterdam UTC+1, NY UTC-5
SECRET = "whsec-test-0123456789"


# --- a real receiver ----------------------------------------------------------------------


class Receiver:
    """What the telephony side got: each request's headers and raw body; it answers with
    the next status of `answers` (the last one repeats), after `delay` seconds."""

    def __init__(self, answers: list[int], delay: float = 0.0) -> None:
        self.answers, self.delay = answers, delay
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                n = len(receiver.requests) - 1
                status = receiver.answers[min(n, len(receiver.answers) - 1)]
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/ring"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


def receiver_verifies(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """A receiver's own check (what docs/webhooks.md tells one to write): parse t and v1,
    recompute HMAC-SHA256 of "<t>.<raw body>", compare in constant time, reject stale t."""
    header = headers.get("Leadrouter-Signature", "")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    if abs(time.time() - int(parts["t"])) > 300:
        return False
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def receiver(settings: Any) -> Iterator[Any]:
    started: list[Receiver] = []

    def start(answers: list[int], delay: float = 0.0) -> Receiver:
        r = Receiver(answers, delay)
        started.append(r)
        settings.NOTIFY_WEBHOOK_URL = r.url
        settings.NOTIFY_WEBHOOK_SECRET = SECRET
        return r

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def countdowns(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The waits the webhook task asked Celery for when it retried (eager tasks retry at
    once; a worker waits this long)."""
    seen: list[int] = []
    retry = send_webhook.retry

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("countdown"))
        return retry(*args, **kwargs)

    monkeypatch.setattr(send_webhook, "retry", spy)
    return seen


def ring_all(agents: Any, web: Any, **rule: Any) -> list[Any]:
    team = agents(2)
    make_rule(pool=make_pool(team), sources=[web], strategy="broadcast", **rule)
    return team


def log_of(lead: Any) -> list[tuple[int, int | None, str]]:
    return [
        (a.attempt, a.status_code, a.outcome)
        for a in WebhookAttempt.objects.filter(lead=lead).order_by("attempt", "id")
    ]


# --- the webhook: signed ------------------------------------------------------------------


# "The ring-all / shotgun webhook is unsigned although it carries agents' phone numbers and
# the lead's PIN"
def test_the_ring_all_webhook_is_signed_and_a_receiver_can_verify_it(agents, post, web, receiver):
    hook = receiver([204])
    team = ring_all(agents, web)
    with time_machine.travel(MONDAY_10, tick=True):
        lead = post(phone="+31 20 123 4567")
    assert len(hook.requests) == 1
    headers, body = hook.requests[0]
    assert "Leadrouter-Signature" in headers
    with time_machine.travel(MONDAY_10 + dt.timedelta(seconds=2)):  # the receiver's clock
        assert receiver_verifies(headers, body, SECRET)
        assert not receiver_verifies(headers, body, "another-secret")
        tampered = body.replace(lead.pin.encode(), b"0000")
        assert not receiver_verifies(headers, tampered, SECRET)
    sent = json.loads(body)
    assert sent["lead"]["pin"] == lead.pin and len(sent["agents"]) == len(team)
    assert headers["Idempotency-Key"] == sent["id"]


def test_the_claimed_event_is_signed_too(
    agents, post, web, receiver, django_capture_on_commit_callbacks
):
    hook = receiver([204])
    first, _ = ring_all(agents, web)
    lead = post()
    offer = lead.offers.get(agent=first)
    with django_capture_on_commit_callbacks(execute=True):
        offer_claim(offer_id=offer.pk, agent=first)
    events = [p["event"] for p in hook.payloads()]
    assert events == ["offer", "claimed"]
    assert all(receiver_verifies(h, b, SECRET) for h, b in hook.requests)


# --- the webhook: retried, logged -----------------------------------------------------------


# "its retry never fires (`autoretry_for=ConnectionError` around a function that swallows
# every exception)"
def test_a_webhook_answered_5xx_is_retried_with_backoff_until_the_receiver_takes_it(
    agents, post, web, receiver, countdowns
):
    hook = receiver([503, 502, 204])
    ring_all(agents, web)
    lead = post()
    assert lead.status == "offered"
    assert len(hook.requests) == 3  # tried, retried twice, delivered
    keys = {h["Idempotency-Key"] for h, _ in hook.requests}
    assert len(keys) == 1  # the same event every time: the receiver can drop a repeat
    assert all(receiver_verifies(h, b, SECRET) for h, b in hook.requests)
    assert log_of(lead) == [(1, 503, "retrying"), (2, 502, "retrying"), (3, 204, "delivered")]
    assert countdowns == [5, 20]  # then 80 s: ×4 each time, as buyer deliveries back off


def test_a_webhook_that_cannot_connect_is_retried_then_given_up(
    agents, post, web, settings, closed_port, countdowns
):
    settings.NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{closed_port}/ring"
    ring_all(agents, web)
    lead = post()
    assert lead.status == "offered"
    attempts = list(WebhookAttempt.objects.filter(lead=lead).order_by("attempt"))
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [
        (1, None, "retrying"),
        (2, None, "retrying"),
        (3, None, "retrying"),
        (4, None, "failed"),
    ]
    assert all("refused" in a.error.lower() for a in attempts)
    assert countdowns == [5, 20, 80]


def test_a_webhook_that_times_out_is_retried(agents, post, web, receiver, monkeypatch):
    monkeypatch.setattr(notify, "WEBHOOK_TIMEOUT", 0.3)
    hook = receiver([204], delay=1.0)  # answers, but too late every time
    ring_all(agents, web)
    lead = post()
    assert len(hook.requests) == 1 + notify.WEBHOOK_RETRIES
    attempts = WebhookAttempt.objects.filter(lead=lead).order_by("attempt")
    assert [a.outcome for a in attempts] == ["retrying"] * 3 + ["failed"]
    assert all(a.error.startswith("timeout") and a.duration_ms >= 250 for a in attempts)


def test_a_webhook_answered_4xx_is_not_retried(agents, post, web, receiver, countdowns):
    hook = receiver([400, 204])
    ring_all(agents, web)
    lead = post()
    assert len(hook.requests) == 1
    assert log_of(lead) == [(1, 400, "rejected")]
    assert countdowns == []


@pytest.mark.parametrize("status", [408, 429])
def test_a_webhook_asked_to_come_back_later_is_retried(agents, post, web, receiver, status):
    hook = receiver([status, 200])
    ring_all(agents, web)
    lead = post()
    assert len(hook.requests) == 2
    assert log_of(lead) == [(1, status, "retrying"), (2, 200, "delivered")]


def test_webhook_attempts_are_listed_read_only_on_the_leads_admin_page(
    agents, post, web, receiver, admin_client
):
    receiver([500, 204])
    ring_all(agents, web)
    lead = post()
    page = admin_client.get(f"/admin/leads/lead/{lead.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Webhook attempts" in html
    assert "500" in html and "Failed, will be retried" in html and "Delivered (2xx)" in html
    assert 'name="webhook_attempts-0-attempt"' not in html  # shown, not editable
    listing = admin_client.get("/admin/distribution/webhookattempt/")
    assert listing.status_code == 200 and "Delivered (2xx)" in listing.content.decode()
    assert admin_client.get("/admin/distribution/webhookattempt/add/").status_code == 403


# --- TCPA hours in the lead's zone ---------------------------------------------------------


# "TCPA hours use the lead's time zone only when an `attributes.timezone` was posted."
@pytest.mark.parametrize(
    ("when", "lead", "rings"),
    [
        # 14:00 UTC: 09:00 in New York, 04:00 in Honolulu
        (dt.datetime(2025, 3, 3, 14, 0, tzinfo=UTC), {"phone": "+1 212 555 0100"}, True),
        (dt.datetime(2025, 3, 3, 14, 0, tzinfo=UTC), {"phone": "+1 808 555 0100"}, False),
        # a national number read with the lead's country: 07:30 UTC = 08:30 in Amsterdam
        (
            dt.datetime(2025, 3, 3, 7, 30, tzinfo=UTC),
            {"phone": "020 123 4567", "country": "NL"},
            True,
        ),
        # 21:30 UTC = 22:30 in Amsterdam
        (dt.datetime(2025, 3, 3, 21, 30, tzinfo=UTC), {"phone": "+31 6 1234 5678"}, False),
        # no phone, a country: 12:00 UTC is 23:00 in Sydney (and 20:00 in Perth)
        (dt.datetime(2025, 3, 3, 12, 0, tzinfo=UTC), {"country": "AU"}, False),
        # 07:30 UTC: 08:30 Berlin
        (dt.datetime(2025, 3, 3, 7, 30, tzinfo=UTC), {"country": "DE"}, True),
        # a country of several zones rings only within hours in all of them:
        # 16:00 UTC = 11:00 New York but 06:00 in Honolulu
        (dt.datetime(2025, 3, 3, 16, 0, tzinfo=UTC), {"country": "US"}, False),
        # 20:00 UTC = 15:00 New York, 10:00 Honolulu, 11:00 Anchorage
        (dt.datetime(2025, 3, 3, 20, 0, tzinfo=UTC), {"country": "US"}, True),
        # the attribute, when posted, still wins over the number
        (
            dt.datetime(2025, 3, 3, 14, 0, tzinfo=UTC),
            {"phone": "+1 808 555 0100", "attributes": {"timezone": "America/New_York"}},
            True,
        ),
    ],
)
def test_tcpa_hours_follow_the_leads_phone_number_or_country(
    agents, post, web, receiver, when, lead, rings
):
    hook = receiver([204])
    ring_all(agents, web, tcpa=True)
    with time_machine.travel(when, tick=False):
        posted = post(**lead)
    assert posted.status == "offered"  # the offers stand either way; only the ring waits
    assert bool(hook.requests) is rings
    if not rings:
        note = posted.events.get(message__contains="TCPA")
        assert note.data["zone_source"] in {"phone", "country"}


def test_tcpa_without_phone_country_or_attribute_uses_the_rules_schedule_zone(
    agents, post, web, receiver
):
    hook = receiver([204])
    always = make_schedule(tz="Asia/Tokyo", days=range(7), start="00:00", end="23:59")
    ring_all(agents, web, tcpa=True, schedule=always)
    with time_machine.travel(dt.datetime(2025, 3, 3, 14, 0, tzinfo=UTC), tick=False):
        late = post()  # 23:00 in Tokyo
    with time_machine.travel(dt.datetime(2025, 3, 3, 1, 0, tzinfo=UTC), tick=False):
        morning = post()  # 10:00 in Tokyo
    assert [p["lead"]["id"] for p in hook.payloads()] == [morning.pk]
    assert "Asia/Tokyo" in late.events.get(message__contains="TCPA").message


# --- e-mails ------------------------------------------------------------------------------


class FlakySMTP(EmailBackend):
    """The locmem backend behind an SMTP server that drops the connection at the messages
    whose ordinal (1-based, counted across connections) is in `fail_on`."""

    fail_on: set[int] = set()
    handed = 0

    def send_messages(self, messages: Any) -> int:
        for _ in messages:
            FlakySMTP.handed += 1
            if FlakySMTP.handed in FlakySMTP.fail_on:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def flaky_smtp(settings: Any) -> Iterator[type[FlakySMTP]]:
    settings.EMAIL_BACKEND = f"{__name__}.FlakySMTP"
    FlakySMTP.fail_on, FlakySMTP.handed = set(), 0
    yield FlakySMTP
    FlakySMTP.fail_on = set()


@pytest.fixture
def email_tasks(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The e-mails each send_emails run carried, and the waits its retries asked for."""
    from distribution.tasks.routing import send_emails

    seen: dict[str, list[Any]] = {"runs": [], "waits": []}
    real, retry = notify.emails_send, send_emails.retry

    def emails_send(payloads: Any) -> Any:
        seen["runs"].append(sorted(p["lead_id"] for p in payloads))
        return real(payloads)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen["waits"].append(kwargs.get("countdown"))
        return retry(*args, **kwargs)

    monkeypatch.setattr(notify, "emails_send", emails_send)
    monkeypatch.setattr(send_emails, "retry", spy)
    return seen


# "E-mails are plain text only"
def test_every_email_has_a_text_and_an_html_part(
    agents, post, web, django_capture_on_commit_callbacks
):
    first, second = ring_all(agents, web)
    lead = post()
    with django_capture_on_commit_callbacks(execute=True):
        offer_claim(offer_id=lead.offers.get(agent=first).pk, agent=first)
    # two offers, then the one who lost is told it was withdrawn, the winner it is theirs
    assert sorted(m.to[0] for m in mail.outbox[:2]) == sorted([first.email, second.email])
    assert [m.to[0] for m in mail.outbox[2:]] == [second.email, first.email]
    for message in mail.outbox:
        assert message.body.strip()
        ((html, kind),) = message.alternatives
        assert kind == "text/html" and html.lstrip().startswith("<!DOCTYPE html>")
        assert f"#{lead.pk}" in html
    assert "claimed by another agent" in mail.outbox[2].alternatives[0][0]
    assert "assigned to you" in mail.outbox[3].alternatives[0][0]


# "E-mails are … never retried"
def test_an_email_the_smtp_server_dropped_is_retried_and_arrives_once(
    agents, post, web, flaky_smtp, email_tasks
):
    flaky_smtp.fail_on = {1, 2}
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web])
    lead = post()
    assert lead.owner == a
    assert [m.to for m in mail.outbox] == [[a.email]]  # arrived, once
    assert flaky_smtp.handed == 3
    assert email_tasks["runs"] == [[lead.pk]] * 3
    assert email_tasks["waits"] == [30, 120]  # then 8 and 32 minutes


def test_a_batch_resends_only_what_smtp_did_not_take(
    agents, web, flaky_smtp, email_tasks, django_capture_on_commit_callbacks
):
    from distribution.services.distribute import leads_distribute_batch
    from leads.models import Lead

    team = agents(3)
    make_rule(pool=make_pool(team), sources=[web])
    leads = Lead.objects.bulk_create(Lead(source=web, email=f"b{i}@example.com") for i in range(3))
    ids = sorted(lead.pk for lead in leads)
    flaky_smtp.fail_on = {2}  # the connection drops at the second message
    with django_capture_on_commit_callbacks(execute=True):
        leads_distribute_batch(lead_ids=ids, limit=3)
    first, *rest = email_tasks["runs"]
    assert first == ids and len(rest) == 1 and len(rest[0]) == 2  # the two not sent
    assert sorted(m.to[0] for m in mail.outbox) == sorted(t.email for t in team)  # once each


def test_emails_smtp_never_takes_are_given_up_after_the_retries_and_logged(
    agents, post, web, flaky_smtp, caplog
):
    flaky_smtp.fail_on = set(range(1, 100))
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web])
    lead = post()
    assert lead.owner == a  # the assignment stands
    assert mail.outbox == []
    assert flaky_smtp.handed == 1 + notify.EMAIL_RETRIES
    assert "gave up sending 1 e-mail(s)" in caplog.text and "lead_assigned" in caplog.text


# "the 'lead taken back' e-mail is never sent"
def test_the_agent_who_missed_the_contact_sla_gets_the_taken_back_email(
    agents, post, web, django_capture_on_commit_callbacks
):
    a, b = agents(2, timezone="Europe/Amsterdam")
    make_rule(pool=make_pool([a, b]), sources=[web], contact_sla=dt.timedelta(hours=1))
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        lead = post()
        assert lead.owner == a
        mail.outbox.clear()
        clock.shift(dt.timedelta(minutes=61))
        with django_capture_on_commit_callbacks(execute=True):
            assert leads_reassign_missed_sla() == 1
    taken = [m for m in mail.outbox if m.to == [a.email]]
    assert len(taken) == 1
    assert taken[0].subject == f"Lead #{lead.pk} was taken back"
    assert "no contact attempt" in taken[0].body
    assert "Mon 3 Mar 2025, 12:01 CET (Europe/Amsterdam)" in taken[0].body
    assert "taken back" in taken[0].alternatives[0][0]
    assert any(m.to == [b.email] for m in mail.outbox)  # and the next agent got it


# "E-mail links point to `localhost:8000` whatever the server's address."
def test_email_links_use_the_sites_configured_address(agents, post, web, settings):
    settings.SITE_URL = "https://leads.example.com/"
    (a,) = agents(1)
    make_rule(pool=make_pool([a]), sources=[web])
    lead = post()
    (message,) = mail.outbox
    link = f"https://leads.example.com/agent/leads/{lead.pk}/"
    assert link in message.body
    assert f'href="{link}"' in message.alternatives[0][0]
    assert "localhost" not in message.body + message.alternatives[0][0]


# "e-mails show ISO UTC"
def test_email_times_are_in_the_agents_zone_and_labelled(agents, post, web):
    (amsterdam,) = agents(1, timezone="Europe/Amsterdam")
    (new_york,) = agents(1, timezone="America/New_York")
    make_rule(
        pool=make_pool([amsterdam, new_york]),
        sources=[web],
        strategy="broadcast",
        claim_timeout=dt.timedelta(minutes=10),
    )
    with time_machine.travel(dt.datetime(2025, 3, 3, 8, 0, tzinfo=UTC), tick=False):
        post()
    by_agent = {m.to[0]: m for m in mail.outbox}
    ams, ny = by_agent[amsterdam.email], by_agent[new_york.email]
    assert "Claim it before Mon 3 Mar 2025, 09:10 CET (Europe/Amsterdam)." in ams.body
    assert "Mon 3 Mar 2025, 03:10 EST" in ny.body and "(America/New_York)" in ny.body
    for m in (ams, ny):
        assert "+00:00" not in m.body and "T08:10" not in m.body
        assert "(UTC)" not in m.body
    assert "09:10 CET" in ams.alternatives[0][0]
