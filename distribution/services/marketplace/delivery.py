"""Delivering sold leads to buyers (DESIGN §4 "Delivery to buyers").

A `portal` contract's outbound lead is delivered when sold. A `webhook` or `email` one is
`pending` with a due time (`OutboundLead.delivery_due_at`, a database timer): the task queued
when the sale commits, Beat's `deliver_pending` and `manage.py deliver_pending` all run
`outbound_deliver`, which claims the due row (a conditional UPDATE moves the due time past
the attempt, so two runners never send one attempt twice), sends outside any transaction,
logs a `DeliveryAttempt` and settles the outbound lead:

* 2xx passing the contract's `accept` rule → `delivered`;
* 2xx failing it, or a 4xx other than 408/429 → `rejected` (the buyer's `reason_field`, else
  `http_<status>`);
* 5xx, 408, 429, a timeout or a connection error → retried after `retry_after`, then 4× and
  16× that… up to `retries` retries → `failed`;
* a URL resolving to a loopback / private / link-local / reserved address (checked after DNS
  resolution, and on every redirect) → `failed`, `url_not_public`, nothing sent, unless
  settings.DELIVERY_ALLOW_PRIVATE_NETWORKS.

Webhooks are signed with `config.signing` (Leadrouter-Signature) and carry
`Idempotency-Key: <outbound id>`, the same on every retry. One httpx client per process
keeps connections to buyers alive between deliveries.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from config.signing import SIGNATURE_HEADER, signature_header
from crm.models import Contract, DeliveryFormat, DeliveryMethod
from distribution.errors import MarketplaceError
from distribution.models import DeliveryAttempt, DeliveryStatus, OutboundLead
from leads.models import Lead

logger = logging.getLogger(__name__)

Outcome = DeliveryAttempt.Outcome

# Lead fields of the §7 POST body, sent under their own names by default.
LEAD_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "external_id",
    "postcode",
    "city",
    "country",
    "latitude",
    "longitude",
    "company_name",
    "company_size",
    "attributes",
)
ANSWER_KEEP = 2048  # bytes of the buyer's answer kept in the log
MAX_REDIRECTS = 3
RETRY_FACTOR = 4  # retry_after, then 4× and 16× that, …
# Headers whose values never reach the log (the contract's own credentials).
SECRET_HEADER_WORDS = ("authorization", "token", "secret", "key", "cookie", "password", "auth")
USER_AGENT = "leadrouter-delivery"


def delivery_pending_for(method: str) -> bool:
    """Webhook and e-mail sales wait for their first attempt; portal ones are delivered."""
    return method in (DeliveryMethod.WEBHOOK, DeliveryMethod.EMAIL)


def outbound_prepare(outbound: list[OutboundLead], *, now: datetime) -> list[OutboundLead]:
    """Before the outbound leads of a sale are saved: webhook and e-mail ones become
    `pending`, due now. Returns those (queue them with `deliveries_on_commit` once saved)."""
    ids = {o.contract_id for o in outbound}
    if not ids:
        return []
    methods = dict(Contract.objects.filter(id__in=ids).values_list("id", "delivery_method"))
    pending = []
    for o in outbound:
        if delivery_pending_for(methods.get(o.contract_id, DeliveryMethod.PORTAL)):
            o.status = DeliveryStatus.PENDING
            o.delivery_due_at = now
            pending.append(o)
    return pending


def deliveries_on_commit(outbound: list[OutboundLead]) -> None:
    """After the sale commits, queue one delivery task per pending outbound lead (timers
    lane). A broker that does not answer leaves the rows due: Beat and `deliver_pending`
    send them."""
    ids = [o.pk for o in outbound if o.pk is not None]
    if not ids:
        return

    def queue() -> None:
        from distribution.tasks.marketplace import deliver_outbound

        for pk in ids:
            try:
                deliver_outbound.apply_async(args=[pk], retry=False)
            except Exception:
                if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
                    raise
                logger.warning("could not queue delivery of outbound %s; Beat sends it", pk)

    transaction.on_commit(queue)


# --- the URL guard --------------------------------------------------------------------------


class NotPublic(Exception):
    """The URL resolves to an address a delivery may not reach."""


def _address_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def url_guard(url: str) -> None:
    """Raise NotPublic unless URL is http(s) and every address its host resolves to is a
    public one (or settings.DELIVERY_ALLOW_PRIVATE_NETWORKS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotPublic(f"not an http(s) URL: {url}")
    if settings.DELIVERY_ALLOW_PRIVATE_NETWORKS:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise NotPublic(f"{parts.hostname} does not resolve: {exc}") from exc
    for info in infos:
        address = str(info[4][0])
        if not _address_public(address):
            raise NotPublic(f"{parts.hostname} resolves to {address}")


# --- the HTTP client (one per process, connections reused) ---------------------------------

_client_lock = threading.Lock()
_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    """The process's delivery client: keep-alive pool, no automatic redirects (each hop is
    guarded here), no proxies from the environment."""
    global _client
    with _client_lock:
        if _client is None or _client.is_closed:
            _client = httpx.Client(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                headers={"User-Agent": USER_AGENT},
            )
        return _client


# --- what is sent -----------------------------------------------------------------------


def lead_document(outbound: OutboundLead) -> dict[str, Any]:
    """The default body: the lead's §7 fields plus lead_id, outbound_id, contract, price."""
    lead = outbound.lead
    doc: dict[str, Any] = {f: getattr(lead, f) for f in LEAD_FIELDS}
    doc["campaign"] = lead.campaign.slug if lead.campaign is not None else None
    doc.update(
        lead_id=lead.pk,
        outbound_id=outbound.pk,
        contract=outbound.contract.name,
        price=str(outbound.price),
    )
    bid = getattr(outbound, "bid_id", None)
    if bid:
        doc["bid_id"] = bid
    return doc


def _dot(value: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def mapped_body(outbound: OutboundLead) -> dict[str, Any]:
    """The fields sent: the contract's mapping (their name → our field, an attribute, a
    dot path, or "=literal"), else the whole default document."""
    doc = lead_document(outbound)
    mapping = outbound.contract.delivery_mapping or {}
    if not mapping:
        return doc
    body: dict[str, Any] = {}
    for theirs, ours in mapping.items():
        ours = str(ours)
        if ours.startswith("="):
            body[str(theirs)] = ours[1:]
        elif ours in doc:
            body[str(theirs)] = doc[ours]
        else:
            attrs = doc.get("attributes") or {}
            found, value = (True, attrs[ours]) if ours in attrs else _dot(doc, ours)
            body[str(theirs)] = value if found else None
    return body


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def encode_body(body: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """The raw bytes and their content type."""
    if fmt == DeliveryFormat.FORM:
        flat = {
            k: json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else _plain(v))
            for k, v in body.items()
        }
        return urlencode(flat).encode(), "application/x-www-form-urlencoded"
    return (
        json.dumps(body, default=_plain, separators=(",", ":")).encode(),
        "application/json",
    )


def _logged_headers(headers: dict[str, str], extra: dict[str, Any]) -> dict[str, str]:
    secret = {k.lower() for k in extra if any(w in k.lower() for w in SECRET_HEADER_WORDS)}
    return {k: ("***" if k.lower() in secret else v) for k, v in headers.items()}


# --- one attempt ------------------------------------------------------------------------


@dataclass
class Sent:
    """What one attempt found: the outcome, its reason, and the request/answer to log."""

    outcome: str
    reason: str = ""
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    status: int | None = None
    answer: str = ""
    ms: float = 0.0


RETRY_STATUSES = {408, 429}


def _judge(contract: Contract, status: int, text: str) -> tuple[str, str]:
    """The buyer's answer → (outcome, reason); RETRIED for the statuses worth a retry."""
    if status >= 500 or status in RETRY_STATUSES:
        return Outcome.RETRIED, f"http_{status}"
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = None
    reason = f"http_{status}"
    if contract.delivery_reason_field and data is not None:
        found, value = _dot(data, contract.delivery_reason_field)
        if found and value not in (None, ""):
            reason = str(value)[:200]
    if not 200 <= status < 300:
        return Outcome.REJECTED, reason
    if contract.delivery_accept_field:
        found, value = (
            _dot(data, contract.delivery_accept_field) if data is not None else (False, None)
        )
        allowed = list(contract.delivery_accept_in or [])
        if not found or not (value in allowed or str(value) in {str(a) for a in allowed}):
            return Outcome.REJECTED, reason
    return Outcome.DELIVERED, ""


def webhook_send(outbound: OutboundLead, *, now: datetime) -> Sent:
    """POST the lead to the contract's URL once (following guarded redirects)."""
    contract = outbound.contract
    body, content_type = encode_body(mapped_body(outbound), contract.delivery_format)
    extra = {str(k): str(v) for k, v in (contract.delivery_headers or {}).items()}
    headers = {
        **extra,
        "Content-Type": content_type,
        "Idempotency-Key": str(outbound.pk),
        "User-Agent": USER_AGENT,
    }
    if contract.delivery_secret:
        headers[SIGNATURE_HEADER] = signature_header(
            secret=contract.delivery_secret, timestamp=int(now.timestamp()), body=body
        )
    sent = Sent(
        outcome=Outcome.FAILED,
        url=contract.delivery_url,
        headers=_logged_headers(headers, extra),
        body=body.decode("utf-8", "replace"),
    )
    url = contract.delivery_url
    timeout = contract.delivery_timeout.total_seconds() or 10.0
    started = time.perf_counter()
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            url_guard(url)
            response = http_client().post(url, content=body, headers=headers, timeout=timeout)
            location = response.headers.get("location")
            if response.is_redirect and location:
                url = urljoin(url, location)
                continue
            break
        sent.status = response.status_code
        raw = response.content[:ANSWER_KEEP]
        sent.answer = raw.decode("utf-8", "replace")
        sent.outcome, sent.reason = _judge(
            contract, response.status_code, response.content.decode("utf-8", "replace")
        )
        if response.is_redirect:
            sent.outcome, sent.reason = Outcome.FAILED, "too_many_redirects"
    except NotPublic as exc:
        sent.outcome, sent.reason, sent.answer = Outcome.FAILED, "url_not_public", str(exc)
    except httpx.TimeoutException:
        sent.outcome, sent.reason = Outcome.RETRIED, "timeout"
    except httpx.HTTPError as exc:
        sent.outcome, sent.reason, sent.answer = Outcome.RETRIED, "connection_error", str(exc)
    sent.ms = (time.perf_counter() - started) * 1000
    return sent


def email_message(outbound: OutboundLead) -> mail.EmailMultiAlternatives:
    """The lead's e-mail to the buyer: text and HTML, listing the lead's fields."""
    lead = outbound.lead
    fields = [(k, v) for k, v in mapped_body(outbound).items() if k != "attributes"]
    attributes = (
        sorted((lead.attributes or {}).items()) if not outbound.contract.delivery_mapping else []
    )
    ctx = {
        "lead": lead,
        "outbound": outbound,
        "contract": outbound.contract,
        "fields": [(k, "" if v is None else v) for k, v in fields],
        "attributes": attributes,
    }
    subject = " ".join(render_to_string("emails/delivery_lead_subject.txt", ctx).split())
    message = mail.EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/delivery_lead_body.txt", ctx),
        to=[outbound.contract.delivery_email],
        headers={"Idempotency-Key": str(outbound.pk)},
    )
    message.attach_alternative(render_to_string("emails/delivery_lead_body.html", ctx), "text/html")
    return message


def email_send(outbound: OutboundLead) -> Sent:
    message = email_message(outbound)
    sent = Sent(
        outcome=Outcome.DELIVERED,
        url=outbound.contract.delivery_email,
        headers={"To": outbound.contract.delivery_email, "Subject": str(message.subject)},
        body=str(message.body),
    )
    started = time.perf_counter()
    try:
        message.send()
    except Exception as exc:  # SMTP down or refusing: try again later
        sent.outcome, sent.reason, sent.answer = (
            Outcome.RETRIED,
            "smtp_error",
            str(exc)[:ANSWER_KEEP],
        )
    sent.ms = (time.perf_counter() - started) * 1000
    return sent


# --- settling -----------------------------------------------------------------------------


def retry_wait(contract: Contract, attempt: int) -> timedelta:
    """The wait after failed attempt ATTEMPT (1-based): retry_after, 4×, 16×, …"""
    return contract.delivery_retry_after * (RETRY_FACTOR ** (attempt - 1))


def outbound_settle(outbound: OutboundLead, status: str, reason: str = "") -> None:
    """The one place an outbound lead's delivery ends (delivered, rejected, failed).

    Rejected and failed ones keep their reason; freeing the slot and distributing the lead
    again (DESIGN §4 "What a rejection means") hooks in here."""
    OutboundLead.objects.filter(pk=outbound.pk, status=DeliveryStatus.PENDING).update(
        status=status, delivery_reason=reason[:200], delivery_due_at=None
    )
    outbound.status, outbound.delivery_reason, outbound.delivery_due_at = status, reason, None


def _claim(outbound_id: int, now: datetime) -> OutboundLead | None:
    """Take a due pending outbound lead for one attempt; None when it is not due (sent by
    someone else, settled, or waiting for its retry)."""
    lease = now + timedelta(minutes=10)  # a crashed attempt is tried again after this
    claimed = OutboundLead.objects.filter(
        pk=outbound_id, status=DeliveryStatus.PENDING, delivery_due_at__lte=now
    ).update(delivery_due_at=lease)
    if not claimed:
        return None
    return (
        OutboundLead.objects.select_related("lead__campaign", "contract__company")
        .filter(pk=outbound_id)
        .first()
    )


def outbound_deliver(*, outbound_id: int, now: datetime | None = None) -> str | None:
    """Make one due delivery attempt of an outbound lead and settle or reschedule it.
    Returns the attempt's outcome, or None when nothing was due (idempotent)."""
    now = now or timezone.now()
    outbound = _claim(outbound_id, now)
    if outbound is None:
        return None
    contract = outbound.contract
    attempt = outbound.delivery_attempts + 1
    if contract.delivery_method == DeliveryMethod.WEBHOOK:
        sent = webhook_send(outbound, now=now)
    elif contract.delivery_method == DeliveryMethod.EMAIL:
        sent = email_send(outbound)
    else:  # the contract became a portal one since the sale: the buyer has it there
        sent = Sent(outcome=Outcome.DELIVERED, reason="portal")
    if sent.outcome == Outcome.RETRIED and attempt > contract.delivery_retries:
        sent.outcome = Outcome.FAILED
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            outbound=outbound,
            lead_id=outbound.lead_id,
            attempt=attempt,
            method=contract.delivery_method,
            url=sent.url[:500],
            request_headers=sent.headers,
            request_body=sent.body,
            status_code=sent.status,
            response_body=sent.answer[:ANSWER_KEEP],
            outcome=sent.outcome,
            reason=sent.reason[:200],
            duration_ms=sent.ms,
            created_at=now,
        )
        OutboundLead.objects.filter(pk=outbound.pk).update(delivery_attempts=attempt)
        outbound.delivery_attempts = attempt
        if sent.outcome == Outcome.RETRIED:
            due = now + retry_wait(contract, attempt)
            OutboundLead.objects.filter(pk=outbound.pk).update(delivery_due_at=due)
        elif sent.outcome == Outcome.DELIVERED:
            outbound_settle(outbound, DeliveryStatus.DELIVERED)
        else:
            status = (
                DeliveryStatus.REJECTED
                if sent.outcome == Outcome.REJECTED
                else DeliveryStatus.FAILED
            )
            outbound_settle(outbound, status, sent.reason)
    if sent.outcome != Outcome.DELIVERED:
        logger.info(
            "delivery of outbound %s attempt %d: %s %s",
            outbound.pk,
            attempt,
            sent.outcome,
            sent.reason,
        )
    return str(sent.outcome)


def deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of the pending outbound leads whose next attempt is due, oldest first."""
    now = now or timezone.now()
    return list(
        OutboundLead.objects.filter(status=DeliveryStatus.PENDING, delivery_due_at__lte=now)
        .order_by("delivery_due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def deliver_pending(*, now: datetime | None = None, until_none_due: bool = False) -> dict[str, int]:
    """Make every delivery that is due (first sends and retries whose wait has passed).
    UNTIL_NONE_DUE (the command) goes on while new ones become due (a redistribution after a
    rejection); Beat's task makes one pass. Returns counts per outcome."""
    counts: dict[str, int] = {}
    while True:
        moment = now or timezone.now()
        ids = deliveries_due(now=moment)
        if not ids:
            break
        for pk in ids:
            outcome = outbound_deliver(outbound_id=pk, now=moment)
            if outcome is not None:
                counts[outcome] = counts.get(outcome, 0) + 1
        if not until_none_due:
            break
    return counts


# --- the admin's "send a test lead" -----------------------------------------------------


def _sample_outbound(contract: Contract) -> OutboundLead:
    lead = Lead(
        pk=0,
        first_name="Test",
        last_name="Lead",
        email="test.lead@example.com",
        phone="+15555550100",
        external_id="leadrouter-test",
        postcode="10115",
        city="Berlin",
        country="DE",
        company_name="Example Ltd",
        company_size=10,
        attributes={"test": True},
        campaign=contract.campaign,
    )
    outbound = OutboundLead(lead=lead, contract=contract, price=contract.price)
    outbound.pk = 0
    return outbound


def outbound_test_send(*, contract_id: int, now: datetime | None = None) -> Sent:
    """Send a made-up lead (`outbound_id` 0, attribute `test: true`) the way the contract
    delivers, and return the request and the buyer's answer; nothing is stored."""
    contract = Contract.objects.select_related("campaign").filter(pk=contract_id).first()
    if contract is None:
        raise MarketplaceError("unknown_contract", f"No contract with id {contract_id}.")
    outbound = _sample_outbound(contract)
    if contract.delivery_method == DeliveryMethod.WEBHOOK:
        if not contract.delivery_url:
            raise MarketplaceError("no_url", "Set the webhook URL first.")
        return webhook_send(outbound, now=now or timezone.now())
    if contract.delivery_method == DeliveryMethod.EMAIL:
        if not contract.delivery_email:
            raise MarketplaceError("no_email", "Set the e-mail address first.")
        return email_send(outbound)
    raise MarketplaceError(
        "portal", "A portal contract sends nothing: its buyers see the lead on their pages."
    )
