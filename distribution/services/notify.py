"""Telling agents: templated e-mails and the outbound webhook, sent after commit.

The e-mails of one transaction go out together: one task, one SMTP connection
(`emails_on_commit` → `emails_dispatch` → task send_emails → `emails_send`); the ones an
SMTP failure left unsent are retried by the task with backoff. The telephony webhook is
signed (config/signing.py, docs/webhooks.md), each attempt logged as a `WebhookAttempt`,
retried by its task on 5xx, 408, 429, timeouts and connection errors, never on other 4xx.
Nothing here may make a distribution or a claim fail: every send is caught and logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import TZPATH, ZoneInfo

import phonenumbers
from celery.exceptions import Retry
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone
from phonenumbers import timezone as phone_zones

from config.signing import SIGNATURE_HEADER, signature_header

logger = logging.getLogger(__name__)

TCPA_START_HOUR, TCPA_END_HOUR = 8, 21  # auto-dialling allowed 08:00–21:00 lead-local

EMAIL_RETRIES = 4  # after the first try: 30 s, 2 min, 8 min, 32 min
EMAIL_RETRY_AFTER = 30

WEBHOOK_TIMEOUT = 5.0
WEBHOOK_RETRIES = 3  # after the first try: 5 s, 20 s, 80 s (×4, as buyer deliveries back off)
WEBHOOK_RETRY_AFTER = 5
WEBHOOK_RETRY_STATUSES = frozenset({408, 429})  # 4xx that mean "later", as for deliveries


def backoff(retries: int, *, first: int) -> int:
    """Seconds before retry number RETRIES + 1: FIRST, then ×4 each time."""
    return int(first * 4**retries)


@dataclass(frozen=True)
class Email:
    """One templated e-mail (templates/emails/<template>_{subject.txt,body.txt,body.html})
    to an agent about a lead; only ids travel, so it can be sent by a worker."""

    template: str
    agent_id: int
    lead_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-safe template values

    def to_payload(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "agent_id": self.agent_id,
            "lead_id": self.lead_id,
            "extra": self.extra,
        }


@dataclass
class EmailsSent:
    """What one `emails_send` did: how many went out, and the payloads an SMTP failure left
    unsent (to retry), with that failure."""

    sent: int = 0
    unsent: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def site_url() -> str:
    """The site's address for links in e-mails (setting SITE_URL)."""
    return str(settings.SITE_URL).rstrip("/")


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _values(extra: dict[str, Any]) -> dict[str, Any]:
    """Template values: ISO times (keys ending in `_at`) become datetimes, so the template
    shows them in the recipient's zone."""
    out = dict(extra)
    for key, value in extra.items():
        if key.endswith("_at") and isinstance(value, str) and value:
            with contextlib.suppress(ValueError):
                out[key] = datetime.fromisoformat(value)
    return out


def _render(payload: dict[str, Any], agent: Any, lead: Any) -> mail.EmailMultiAlternatives:
    """The e-mail of PAYLOAD, text and HTML, with every time in the agent's own zone."""
    profile = getattr(agent, "agent", None)
    zone = _zone(profile.timezone if profile is not None else settings.TIME_ZONE)
    ctx = {
        "base_url": site_url(),
        "agent": agent,
        "lead": lead,
        "time_zone": zone.key,
        **_values(payload.get("extra") or {}),
    }
    name = f"emails/{payload['template']}"
    with timezone.override(zone):
        subject = " ".join(render_to_string(f"{name}_subject.txt", ctx).split())
        text = render_to_string(f"{name}_body.txt", ctx)
        try:
            html: str | None = render_to_string(f"{name}_body.html", ctx)
        except TemplateDoesNotExist:
            html = None
    message = mail.EmailMultiAlternatives(subject=subject, body=text, to=[agent.email])
    if html is not None:
        message.attach_alternative(html, "text/html")
    return message


def emails_send(payloads: Sequence[dict[str, Any]]) -> EmailsSent:
    """Render and send e-mails over one SMTP connection (2 queries for all the agents and
    leads), one message after the other; at the first failure to send, that one and the
    rest are returned unsent (for a retry), so none is sent twice. A template that does not
    render is logged and skipped (a retry would not help)."""
    from accounts.models import User
    from leads.models import Lead

    users = User.objects.select_related("agent").in_bulk({p["agent_id"] for p in payloads})
    leads = Lead.objects.select_related("campaign").in_bulk(
        {p["lead_id"] for p in payloads if p.get("lead_id")}
    )
    ready: list[tuple[dict[str, Any], mail.EmailMultiAlternatives]] = []
    for p in payloads:
        agent = users.get(p["agent_id"])
        if agent is None or not agent.email:
            continue
        try:
            ready.append((p, _render(p, agent, leads.get(p.get("lead_id")))))
        except Exception:
            logger.exception("could not render e-mail %s", p.get("template"))
    result = EmailsSent()
    if not ready:
        return result
    done = 0
    try:
        with mail.get_connection() as connection:  # opened once for the whole batch
            for _, message in ready:
                connection.send_messages([message])
                done += 1
    except Exception as exc:
        result.unsent = [p for p, _ in ready[done:]]
        result.error = f"{type(exc).__name__}: {exc}"
        logger.warning("could not send %d e-mail(s): %s", len(result.unsent), result.error)
    result.sent = done
    return result


def emails_failed(payloads: Sequence[dict[str, Any]], *, error: str) -> None:
    """The e-mails still unsent after the last retry: logged as an error, with recipients."""
    logger.error(
        "gave up sending %d e-mail(s) after %d retries (%s): %s",
        len(payloads),
        EMAIL_RETRIES,
        error,
        ", ".join(f"{p['template']} to agent {p['agent_id']}" for p in payloads),
    )


class _EmailBatch:
    """Every e-mail one transaction queued, handed to a worker in one task at its commit
    (run after the batch's parts: it is kept the last of the transaction's e-mail hooks)."""

    def __init__(self) -> None:
        self.emails: list[Email] = []

    def __call__(self) -> None:
        emails, self.emails = self.emails, []  # once (tests may run the hooks, then more)
        if emails:
            emails_dispatch(emails)


def _moved() -> None:
    """Stands where the batch's hook was before it moved to the end (see emails_on_commit)."""


class _EmailPart:
    """The e-mails of one write, joining the batch at commit — an ordinary on-commit hook
    of the savepoint it was queued in, so a rollback of that savepoint drops them."""

    def __init__(self, batch: _EmailBatch, emails: Sequence[Email]) -> None:
        self.batch, self.emails = batch, list(emails)

    def __call__(self) -> None:
        self.batch.emails.extend(self.emails)


def emails_on_commit(emails: Sequence[Email], *, using: str | None = None) -> None:
    """Send EMAILS once the current transaction commits, in the one task (one SMTP
    connection) that carries every e-mail of that transaction — however many routing
    writes and nested services queued them; none of those whose savepoint rolled back;
    at once outside a transaction.

    1. The e-mails become a part: an on-commit hook in the current savepoint (Django drops
       it with the savepoint).
    2. The transaction's batch (one per transaction) is an on-commit hook of the whole
       transaction, moved after the new part, so that at commit every surviving part has
       joined it before it sends. This edits Django's `connection.run_on_commit` list of
       `(savepoint ids, hook, robust)` — the one place outside the framework that does —
       leaving a no-op where the batch was, so that hooks keep their places in the list
       (Django's captureOnCommitCallbacks reads the hooks added after a given index).
    """
    if not emails:
        return
    conn = transaction.get_connection(using)
    if not conn.in_atomic_block:
        emails_dispatch(emails)
        return
    hooks = conn.run_on_commit
    at = next((i for i, hook in enumerate(hooks) if isinstance(hook[1], _EmailBatch)), None)
    if at is None:
        batch = _EmailBatch()
    else:
        batch = hooks[at][1]
        hooks[at] = (hooks[at][0], _moved, False)
    transaction.on_commit(_EmailPart(batch, emails), using=using)
    conn.run_on_commit.append((set(), batch, False))  # the whole transaction's scope


def _eager_retry_raised(what: str) -> None:
    """An eager task (tests) run with task_eager_propagates raises its retry instead of
    running it; the first try was made and logged, so nothing is sent again in process."""
    logger.info("%s asked for a retry that an eager task does not run", what)


def emails_dispatch(emails: Sequence[Email]) -> None:
    """Hand the e-mails to a worker in one task (sent in process, over one connection, if
    the broker is down)."""
    payloads = [e.to_payload() for e in emails]
    if not payloads:
        return
    from distribution.tasks.routing import send_emails

    try:
        # a summary for the task's logged arguments: Celery's own repr of a batch's
        # payloads cost more than sending them
        argsrepr = f"[<{len(payloads)} e-mail(s)>]"
        send_emails.apply_async(args=[payloads], retry=False, argsrepr=argsrepr)
    except Retry:
        _eager_retry_raised("e-mails")
    except Exception:
        logger.warning("could not queue e-mails; sending them in process", exc_info=True)
        emails_send(payloads)


# --- TCPA calling hours -------------------------------------------------------------------


@dataclass(frozen=True)
class LeadZones:
    """The time zones a lead may be in, and where they came from (`attribute`, `phone`,
    `country` or `default`). Several zones when the number or country spans them."""

    zones: tuple[str, ...]
    source: str


@cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    """ISO country code → its IANA zones, from the tz database's zone.tab (the system's, or
    the `tzdata` package's)."""
    text = ""
    for directory in TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            break
    if not text:
        text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) >= 3:
            zones.setdefault(cols[0].upper(), []).append(cols[2])
    return {code: tuple(names) for code, names in zones.items()}


def _known(names: Sequence[str]) -> tuple[str, ...]:
    out = []
    for name in names:
        try:
            ZoneInfo(name)
        except (KeyError, ValueError):
            continue
        out.append(name)
    return tuple(out)


def lead_zones(
    *, attributes: dict[str, Any], phone: str, country: str, fallback_tz: str
) -> LeadZones:
    """Where the lead is, in time: its `timezone` attribute; else its phone number's zones
    (the `phonenumbers` package, read with the lead's country as the default region); else
    its country's zones; else FALLBACK_TZ (the rule's schedule zone, or the site's)."""
    named = _known([str(attributes.get("timezone") or attributes.get("time_zone") or "")])
    if named:
        return LeadZones(named, "attribute")
    region = (country or "").upper() or None
    if phone:
        try:
            number = phonenumbers.parse(phone, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_possible_number(number):
            zones = _known(
                [z for z in phone_zones.time_zones_for_number(number) if z != "Etc/Unknown"]
            )
            if zones:
                return LeadZones(zones, "phone")
    if region:
        zones = _known(_country_zones().get(region, ()))
        if zones:
            return LeadZones(zones, "country")
    return LeadZones((fallback_tz,) if _known([fallback_tz]) else ("UTC",), "default")


@dataclass(frozen=True)
class TcpaVerdict:
    allowed: bool
    where: LeadZones

    def describe(self) -> str:
        zones = self.where.zones
        shown = ", ".join(zones[:3]) + (f" and {len(zones) - 3} more" if len(zones) > 3 else "")
        return f"{shown} (from the lead's {self.where.source})"


def tcpa_check(
    *, attributes: dict[str, Any], phone: str, country: str, fallback_tz: str, now: datetime
) -> TcpaVerdict:
    """TCPA calling hours: no auto-dial before 08:00 or from 21:00 lead-local. A lead whose
    number or country spans several zones may be called only when it is within those hours
    in every one of them (an unknown zone is never the reason a call breaks the law)."""
    where = lead_zones(attributes=attributes, phone=phone, country=country, fallback_tz=fallback_tz)
    allowed = all(
        TCPA_START_HOUR <= now.astimezone(ZoneInfo(z)).hour < TCPA_END_HOUR for z in where.zones
    )
    return TcpaVerdict(allowed, where)


def tcpa_allows(
    *,
    attributes: dict[str, Any],
    fallback_tz: str,
    now: datetime,
    phone: str = "",
    country: str = "",
) -> bool:
    """True when TCPA hours allow auto-dialling the lead now (see tcpa_check)."""
    return tcpa_check(
        attributes=attributes, phone=phone, country=country, fallback_tz=fallback_tz, now=now
    ).allowed


# --- the outbound (telephony) webhook -------------------------------------------------------


@dataclass(frozen=True)
class WebhookSent:
    """The settled attempt: its outcome (WebhookAttempt.Outcome) and whether to try again."""

    outcome: str
    status_code: int | None = None
    error: str = ""

    @property
    def retry(self) -> bool:
        return self.outcome == "retrying"


def _webhook_request(
    url: str, payload: dict[str, Any], *, now: float
) -> tuple[urllib.request.Request, bytes]:
    body = json.dumps(payload, default=str, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "leadrouter-webhook",
        "Idempotency-Key": str(payload.get("id") or ""),  # the same on every retry
    }
    secret = str(getattr(settings, "NOTIFY_WEBHOOK_SECRET", "") or "")
    if secret:
        headers[SIGNATURE_HEADER] = signature_header(secret=secret, timestamp=int(now), body=body)
    return urllib.request.Request(url, data=body, method="POST", headers=headers), body


def webhook_send(
    *, payload: dict[str, Any], attempt: int = 1, final: bool = True, url: str | None = None
) -> WebhookSent:
    """POST PAYLOAD (JSON, signed with NOTIFY_WEBHOOK_SECRET) to NOTIFY_WEBHOOK_URL once, and
    log the attempt. 2xx → delivered; 5xx, 408, 429, a timeout or a connection error →
    retrying (failed when FINAL); any other answer → rejected. Never raises."""
    from distribution.models import WebhookAttempt

    target = url if url is not None else str(getattr(settings, "NOTIFY_WEBHOOK_URL", "") or "")
    if not target:
        return WebhookSent("failed", error="NOTIFY_WEBHOOK_URL is not set")
    started = time.perf_counter()
    status: int | None = None
    error = ""
    try:
        request, _ = _webhook_request(target, payload, now=time.time())
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:  # an answer, not 2xx
        status = int(exc.code)
    except TimeoutError as exc:
        error = f"timeout after {WEBHOOK_TIMEOUT:g} s" + (f": {exc}" if str(exc) else "")
    except urllib.error.URLError as exc:
        reason = exc.reason
        timed_out = isinstance(reason, TimeoutError)
        error = f"timeout after {WEBHOOK_TIMEOUT:g} s" if timed_out else f"{reason}"
    except Exception as exc:  # connection reset, refused, bad URL …
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = (time.perf_counter() - started) * 1000
    if status is not None and 200 <= status < 300:
        outcome = WebhookAttempt.Outcome.DELIVERED
    elif status is not None and status < 500 and status not in WEBHOOK_RETRY_STATUSES:
        outcome = WebhookAttempt.Outcome.REJECTED
    else:
        outcome = WebhookAttempt.Outcome.FAILED if final else WebhookAttempt.Outcome.RETRYING
    if outcome != WebhookAttempt.Outcome.DELIVERED:
        logger.warning("webhook %s attempt %d: %s (%s)", target, attempt, status or error, outcome)
    lead_id = (payload.get("lead") or {}).get("id")
    try:
        if lead_id is not None:
            WebhookAttempt.objects.create(
                lead_id=lead_id,
                event=str(payload.get("event", ""))[:40],
                url=target[:500],
                attempt=attempt,
                status_code=status,
                error=error[:500],
                outcome=outcome,
                duration_ms=round(duration_ms, 1),
            )
    except Exception:
        logger.exception("could not log webhook attempt %d for lead %s", attempt, lead_id)
    return WebhookSent(str(outcome), status, error)


def webhooks_dispatch(payloads: Sequence[dict[str, Any]]) -> None:
    """Queue each webhook POST on the broker (a worker sends it and retries it); sent once in
    process if the broker is down, so an integration is never silently skipped. Each event
    gets an id, its Idempotency-Key on every retry."""
    if not payloads or not getattr(settings, "NOTIFY_WEBHOOK_URL", ""):
        return
    from distribution.tasks.routing import send_webhook

    for payload in payloads:
        event = {"id": uuid.uuid4().hex, **payload}
        try:
            send_webhook.apply_async(args=[event], retry=False)
        except Retry:
            _eager_retry_raised("a webhook")
        except Exception:
            logger.warning("could not queue a webhook; sending it in process", exc_info=True)
            webhook_send(payload=event)
