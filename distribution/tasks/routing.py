"""Thin Celery tasks of agent routing: ids in, one service call, safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from distribution.services import claims, distribute, notify, rules, sla

from .retry import RETRY_WITH_BACKOFF


@shared_task(name="distribution.expire_offers")
def expire_offers() -> int:
    """Expire overdue offers and move their leads on (the Beat sweeper, every 5 s)."""
    return claims.offers_expire()


@shared_task(name="distribution.release_held")
def release_held() -> int:
    """Distribute held leads whose rule's schedule has opened."""
    return distribute.leads_release_held()


@shared_task(name="distribution.reassign_missed_sla")
def reassign_missed_sla() -> int:
    """Take back leads whose contact SLA passed without a contact attempt."""
    return sla.leads_reassign_missed_sla()


@shared_task(name="distribution.distribute_waiting_for_rule", max_retries=3, **RETRY_WITH_BACKOFF)
def distribute_waiting_for_rule(rule_id: int) -> dict[str, int]:
    """Queue, in chunks, the waiting leads a just-enabled rule matches (safe to run twice:
    a lead already distributed is no longer waiting)."""
    return rules.rule_distribute_waiting(rule_id=rule_id)


@shared_task(name="distribution.distribute_leads", max_retries=5, **RETRY_WITH_BACKOFF)
def distribute_leads(lead_ids: list[int], trigger: str) -> dict[str, int]:
    """Distribute a chunk of pending leads in one batch (idempotent: a lead already
    distributed is left alone)."""
    return distribute.leads_distribute_chunk(lead_ids=lead_ids, trigger=trigger)


@shared_task(name="distribution.send_emails", bind=True, max_retries=notify.EMAIL_RETRIES)
def send_emails(self: Task, payloads: list[dict[str, Any]]) -> int:
    """Render and send the e-mails of one transaction (assigned, offered, claimed, …) over
    one SMTP connection; those an SMTP failure left unsent are retried with backoff."""
    result = notify.emails_send(payloads)
    if result.unsent:
        retries = self.request.retries
        if retries < notify.EMAIL_RETRIES:
            raise self.retry(
                args=[result.unsent],
                countdown=notify.backoff(retries, first=notify.EMAIL_RETRY_AFTER),
                argsrepr=f"[<{len(result.unsent)} e-mail(s)>]",
            )
        notify.emails_failed(result.unsent, error=result.error)
    return result.sent


@shared_task(name="distribution.send_webhook", bind=True, max_retries=notify.WEBHOOK_RETRIES)
def send_webhook(self: Task, payload: dict[str, Any]) -> bool:
    """POST one event to NOTIFY_WEBHOOK_URL, signed; retried with backoff on 5xx, 408, 429,
    timeouts and connection errors (each attempt logged; failures never block a claim)."""
    retries = self.request.retries
    sent = notify.webhook_send(
        payload=payload, attempt=retries + 1, final=retries >= notify.WEBHOOK_RETRIES
    )
    if sent.retry:
        raise self.retry(countdown=notify.backoff(retries, first=notify.WEBHOOK_RETRY_AFTER))
    return sent.outcome == "delivered"
