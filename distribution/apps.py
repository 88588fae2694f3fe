from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "distribution"
    verbose_name = "Distribution"

    def ready(self) -> None:
        from leads.signals import lead_changed

        lead_changed.connect(_run_automations, dispatch_uid="distribution.lead_changed")


def _run_automations(*, lead_id: int, trigger: str, actor: Any = None, **_: Any) -> None:
    """A lead edited by hand: its `updated` / `status_changed` automations run after commit."""
    from django.db import transaction

    from distribution.services.automations import lead_run_automations

    user = actor if getattr(actor, "pk", None) else None
    transaction.on_commit(
        lambda: lead_run_automations(lead_id=lead_id, trigger=trigger, actor=user)
    )
