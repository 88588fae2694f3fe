"""The distribution app: routing and the marketplace, hooked into leads through signals."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class DistributionConfig(AppConfig):
    """Distribution hooks into leads here: leads sends signals and asks registered parts for
    its lead document, and never imports distribution."""

    name = "distribution"
    verbose_name = "Distribution"

    def ready(self) -> None:
        from distribution.api import documents
        from leads import selectors
        from leads.signals import lead_awaits_distribution, lead_changed

        lead_changed.connect(_run_automations, dispatch_uid="distribution.lead_changed")
        lead_awaits_distribution.connect(_queue, dispatch_uid="distribution.lead_queue")
        selectors.lead_document_part_add(documents.lead_document_part)
        selectors.lead_reader_add(documents.lead_offered_to)


def _queue(*, lead_id: int, bulk: bool = False, campaign_id: int | None = None, **_: Any) -> None:
    """A new lead: its distribution task is queued once the ingesting transaction commits
    (an imported row in the bulk lane)."""
    from distribution.services import lead_queue_distribution

    lead_queue_distribution(lead_id=lead_id, bulk=bulk, campaign_id=campaign_id)


def _run_automations(*, lead_id: int, trigger: str, actor: Any = None, **_: Any) -> None:
    """A lead edited by hand: its `updated` / `status_changed` automations run after commit."""
    from django.db import transaction

    from distribution.services.automations import lead_run_automations

    user = actor if getattr(actor, "pk", None) else None
    transaction.on_commit(
        lambda: lead_run_automations(lead_id=lead_id, trigger=trigger, actor=user)
    )
