"""Telling agents: templated e-mails and the outbound webhook, sent after commit.

The e-mails of one transaction go out together: one task, one SMTP connection
(`emails_on_commit` → `emails_dispatch` → task send_emails → `emails_send`). Nothing here
may make a distribution or a claim fail: every send is caught and logged.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

TCPA_START_HOUR, TCPA_END_HOUR = 8, 21  # auto-dialling allowed 08:00–21:00 lead-local


@dataclass(frozen=True)
class Email:
    """One templated e-mail (templates/emails/<template>_{subject,body}.txt) to an agent
    about a lead; only ids travel, so it can be sent by a worker."""

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


def _base_url() -> str:
    return str(getattr(settings, "LEADROUTER_BASE_URL", "http://localhost:8000")).rstrip("/")


def emails_send(payloads: Sequence[dict[str, Any]]) -> int:
    """Render and send e-mails over one connection (2 queries for all the agents and
    leads); failures are logged, never raised. Returns how many were sent."""
    from accounts.models import User
    from leads.models import Lead

    users = User.objects.in_bulk({p["agent_id"] for p in payloads})
    leads = Lead.objects.select_related("campaign").in_bulk(
        {p["lead_id"] for p in payloads if p.get("lead_id")}
    )
    messages = []
    for p in payloads:
        agent = users.get(p["agent_id"])
        if agent is None or not agent.email:
            continue
        ctx = {
            "base_url": _base_url(),
            "agent": agent,
            "lead": leads.get(p.get("lead_id")),
            **(p.get("extra") or {}),
        }
        try:
            subject = render_to_string(f"emails/{p['template']}_subject.txt", ctx).strip()
            body = render_to_string(f"emails/{p['template']}_body.txt", ctx)
        except Exception:
            logger.exception("could not render e-mail %s", p.get("template"))
            continue
        messages.append(
            mail.EmailMessage(subject=" ".join(subject.split()), body=body, to=[agent.email])
        )
    if not messages:
        return 0
    try:
        with mail.get_connection() as connection:
            return int(connection.send_messages(messages) or 0)
    except Exception:
        logger.exception("could not send %d e-mail(s)", len(messages))
        return 0


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
    except Exception:
        logger.warning("could not queue e-mails; sending them in process", exc_info=True)
        emails_send(payloads)


def lead_local_hour(*, attributes: dict[str, Any], fallback_tz: str, now: datetime) -> int:
    """The lead's local hour: its `timezone` attribute, else the rule's (or site's) zone."""
    name = str(attributes.get("timezone") or attributes.get("time_zone") or fallback_tz)
    try:
        zone = ZoneInfo(name)
    except (KeyError, ValueError):
        zone = ZoneInfo(fallback_tz)
    return now.astimezone(zone).hour


def tcpa_allows(*, attributes: dict[str, Any], fallback_tz: str, now: datetime) -> bool:
    """TCPA calling hours: no auto-dial before 08:00 or from 21:00 in the lead's zone."""
    hour = lead_local_hour(attributes=attributes, fallback_tz=fallback_tz, now=now)
    return TCPA_START_HOUR <= hour < TCPA_END_HOUR


def webhook_post(payload: dict[str, Any], *, url: str | None = None, timeout: float = 5.0) -> bool:
    """POST PAYLOAD as JSON to NOTIFY_WEBHOOK_URL; False (logged) on any failure."""
    target = url if url is not None else getattr(settings, "NOTIFY_WEBHOOK_URL", "")
    if not target:
        return False
    request = urllib.request.Request(
        target,
        data=json.dumps(payload, default=str).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "leadrouter-webhook"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
    except Exception as exc:
        logger.warning("webhook %s failed: %s", target, exc)
        return False
    if not ok:
        logger.warning("webhook %s answered %s", target, response.status)
    return ok


def webhooks_dispatch(payloads: Sequence[dict[str, Any]]) -> None:
    """Queue each webhook POST on the broker (a worker sends it); sent in process if the
    broker is down, so an integration is never silently skipped."""
    if not payloads or not getattr(settings, "NOTIFY_WEBHOOK_URL", ""):
        return
    from distribution.tasks.routing import send_webhook

    for payload in payloads:
        try:
            send_webhook.apply_async(args=[payload], retry=False)
        except Exception:
            logger.warning("could not queue a webhook; sending it in process", exc_info=True)
            webhook_post(payload)
