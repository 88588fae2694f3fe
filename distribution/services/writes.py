"""Everything one routing operation writes, accumulated and flushed in a fixed number of bulk
statements (distribution.db.bulk); new rows built without `Model.__init__`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db import transaction
from django.db.models import Model
from django.db.models.base import ModelState

from accounts.models import AgentProfile
from distribution.db.bulk import RowsUpdate, rows_write
from distribution.models import Assignment, DistributionAttempt, Notice, Offer
from distribution.services.notify import Email, emails_on_commit, webhooks_dispatch
from leads.models import Activity, Lead, LeadEvent

LEAD_UPDATE_FIELDS = [
    "status",
    "status_changed_at",
    "distribution_state",
    "owner",
    "rule",
    "assigned_at",
    "held_until",
    "sla_due_at",
    "exception_reason",
    "updated_at",
]

# --- accumulated writes ---------------------------------------------------------------------

M = TypeVar("M", bound=Model)


class NewRow(Generic[M]):
    """Makes new, unsaved rows of one model for the bulk writes, without `Model.__init__`.

    `__init__` resolves every keyword against the fields and goes through each descriptor:
    for the five or so rows a routed lead writes that was a good part of a batch's CPU.
    Here the given attribute values (`<fk>_id` for foreign keys) go straight into the
    instance, every other field gets its default, and RELATED objects are cached as a
    foreign key assignment would cache them. The rows are what `__init__` would build
    (no pre/post_init receivers exist for these models).
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.static: dict[str, Any] = {}
        self.dynamic: list[Any] = []  # fields with a callable default, called per row
        for f in model._meta.concrete_fields:
            if f.has_default() and callable(f.default):
                self.dynamic.append(f)
            else:
                self.static[f.attname] = f.get_default()

    def __call__(self, related: Mapping[str, Model | None] | None = None, **values: Any) -> M:
        row = self.model.__new__(self.model)
        state = ModelState()
        row._state = state
        attrs = row.__dict__
        attrs.update(self.static)
        for f in self.dynamic:
            if f.attname not in values:
                attrs[f.attname] = f.get_default()
        attrs.update(values)
        if related:
            state.fields_cache.update(related)
        return row


new_attempt = NewRow(DistributionAttempt)
new_assignment = NewRow(Assignment)
new_offer = NewRow(Offer)
new_notice = NewRow(Notice)
new_activity = NewRow(Activity)
new_event = NewRow(LeadEvent)


@dataclass
class Writes:
    """Everything one operation writes, flushed in a fixed number of bulk statements."""

    leads: dict[int, Lead] = field(default_factory=dict)
    events: list[LeadEvent] = field(default_factory=list)
    attempts: list[DistributionAttempt] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    turns: dict[int, datetime] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)

    def flush(self) -> None:
        """Write in bulk (distribution.db.bulk: one statement on PostgreSQL, the long lists
        of a batch by COPY); e-mails and webhooks go out after commit."""
        updates = []
        if self.leads:
            updates.append(RowsUpdate(Lead, list(self.leads.values()), LEAD_UPDATE_FIELDS))
        if self.turns:
            updates.append(
                RowsUpdate(AgentProfile, self._turn_rows(), ["last_turn_at"], key="user")
            )
        rows_write(updates=updates, inserts=self._inserts(), batch=len(self.leads) > 1)
        emails_on_commit(self.emails)  # with the transaction's other e-mails: one task
        webhooks = list(self.webhooks)
        if webhooks:
            transaction.on_commit(lambda: webhooks_dispatch(webhooks))

    def _inserts(self) -> list[tuple[type[Any], list[Any]]]:
        return [
            (LeadEvent, self.events),
            (DistributionAttempt, self.attempts),
            (Assignment, self.assignments),
            (Offer, self.offers),
            (Activity, self.activities),
            (Notice, self.notices),
        ]

    def _turn_rows(self) -> list[AgentProfile]:
        """The agents whose turn moved (round robin order), their rows locked in id order
        first when there are several: two batches whose pools share agents then wait for
        each other instead of deadlocking in the UPDATE. One row has no order: its UPDATE
        takes the same lock the SELECT … FOR UPDATE would."""
        if len(self.turns) > 1:
            list(
                AgentProfile.objects.select_for_update()
                .filter(user_id__in=list(self.turns))
                .order_by("user_id")
                .values_list("pk", flat=True)
            )
        return [
            AgentProfile(user_id=agent_id, last_turn_at=stamp)
            for agent_id, stamp in sorted(self.turns.items())
        ]
