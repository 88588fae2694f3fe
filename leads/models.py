"""Leads and where they come from: Source, Campaign, Lead, Activity, LeadEvent."""

from __future__ import annotations

import re
import secrets
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from config.errors import DomainError


class Source(models.Model):
    """Where leads come from (a web form, a vendor); posts with its own API token."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """A marketing campaign a lead belongs to (routing filters on it; the marketplace sells
    by it)."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LeadStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    HELD = "held", "Held (waiting for opening hours)"
    OFFERED = "offered", "Offered"
    WAITING = "waiting", "Waiting (pull / hopper queue)"
    ASSIGNED = "assigned", "Assigned"
    UNASSIGNED = "unassigned", "Unassigned (Lead Assignment queue)"
    EXCEPTION = "exception", "Exception (Lead Exception queue)"
    PROSPECT = "prospect", "Prospect"
    WORKING = "working", "Working"
    CONTACTED = "contacted", "Contacted"
    QUALIFIED = "qualified", "Qualified"
    CONVERTED = "converted", "Converted"
    LOST = "lost", "Lost"
    DISTRIBUTED = "distributed", "Distributed (sold)"
    MERGED = "merged", "Merged into its original (closed)"


S = LeadStatus
# Routing states: any automatic or manual distribution may move between them.
_ROUTING = frozenset(
    s.value
    for s in (S.PENDING, S.HELD, S.OFFERED, S.WAITING, S.UNASSIGNED, S.EXCEPTION, S.PROSPECT)
)
# Sales states: an owner works the lead along them.
_SALES = frozenset(
    s.value for s in (S.ASSIGNED, S.WORKING, S.CONTACTED, S.QUALIFIED, S.CONVERTED, S.LOST)
)
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    **{s: (_ROUTING | _SALES | {S.DISTRIBUTED.value}) - {s} for s in _ROUTING},
    # an owned lead moves along the pipeline, or is taken back into routing (reassignment,
    # a missed contact SLA, an automation re-distributing it)
    **{s: (_SALES | _ROUTING) - {s, S.PROSPECT.value} for s in _SALES},
    # a sold lead can still be handed to an agent or re-queued by a manager
    S.DISTRIBUTED.value: _ROUTING | _SALES - {S.DISTRIBUTED.value},
    # a duplicate merged into its original is closed for good (leads.services.lead_merge)
    S.MERGED.value: frozenset(),
}
# a duplicate may be merged from any status but these: offered (agents hold open offers of
# it), sold (buyers have it), or merged already
MERGEABLE_STATUSES = frozenset(ALLOWED_TRANSITIONS) - {
    S.OFFERED.value,
    S.DISTRIBUTED.value,
    S.MERGED.value,
}
for _status in MERGEABLE_STATUSES:
    ALLOWED_TRANSITIONS[_status] = ALLOWED_TRANSITIONS[_status] | {S.MERGED.value}
OWNED_STATUSES = _SALES
OPEN_STATUSES = frozenset(s.value for s in (S.ASSIGNED, S.WORKING, S.CONTACTED, S.QUALIFIED))


class DistributionState(models.TextChoices):
    PENDING = "pending", "Pending (queued for distribution)"
    ACTIVE = "active", "Active (offers, queue or window open)"
    DONE = "done", "Done"
    # stored without distribution (`import_leads --no-distribute`): the sweeper leaves it;
    # `distribute_pending` or an enabled rule's backlog distributes it when asked
    UNQUEUED = "unqueued", "Not queued (distributed only when asked)"


class Lane(models.TextChoices):
    """The work lane a lead's distribution runs in: a live arrival (API, admin) or bulk work
    (a CSV row). An arrival batch takes pending leads of its own lane only, and the sweeper
    re-queues a lead into its lane, so bulk rows never ride in a live lead's batch."""

    LIVE = "live", "Live"
    BULK = "bulk", "Bulk (imported)"


class InvalidTransition(DomainError):
    """A status move that ALLOWED_TRANSITIONS does not permit."""

    code = "invalid_transition"
    status = 409


def new_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str) -> str:
    """The last nine digits: the same number written with a country code (+31 6…, +1 212…)
    or a trunk prefix (06…, 212…) compares equal, without a per-country numbering plan."""
    digits = re.sub(r"\D", "", value or "")
    return digits[-9:]


class Lead(models.Model):
    """An inbound lead. Status moves only through `transition_to`."""

    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )
    external_id = models.CharField(max_length=200, blank=True, default="")
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2 code")
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    company_size = models.PositiveIntegerField(null=True, blank=True)
    assign_to_email = models.EmailField(blank=True)
    assign_to_user_id = models.CharField(max_length=64, blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.PENDING)
    distribution_state = models.CharField(
        max_length=10, choices=DistributionState.choices, default=DistributionState.PENDING
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
    )
    pin = models.CharField(max_length=6, default=new_pin, help_text="Phone-claim PIN")
    email_normalized = models.CharField(max_length=254, blank=True, db_index=True)
    phone_normalized = models.CharField(max_length=20, blank=True, db_index=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    exception_reason = models.CharField(max_length=200, blank=True)
    rule = models.ForeignKey(
        "distribution.Rule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        help_text="The rule that routed the lead",
    )
    held_until = models.DateTimeField(
        null=True, blank=True, help_text="Held after hours: distributed when the rule opens"
    )
    lane = models.CharField(
        max_length=4,
        choices=Lane.choices,
        default=Lane.LIVE,
        help_text="The lane its distribution runs in (imported rows: bulk)",
    )
    queued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last re-queued by the sweeper: not again within the visibility window",
    )
    sla_due_at = models.DateTimeField(
        null=True, blank=True, help_text="A contact attempt is due by then (rule contact SLA)"
    )

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    assigned_at = models.DateTimeField(null=True, blank=True)

    COLUMN_FIELDS: ClassVar[tuple[str, ...]] = (
        "first_name",
        "last_name",
        "email",
        "phone",
        "postcode",
        "city",
        "country",
        "latitude",
        "longitude",
        "company_name",
        "company_size",
        "assign_to_email",
        "assign_to_user_id",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="lead_unique_source_external_id",
            ),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True) | Q(latitude__gte=-90, latitude__lte=90),
                name="lead_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(longitude__isnull=True) | Q(longitude__gte=-180, longitude__lte=180),
                name="lead_longitude_range",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["distribution_state", "created_at"]),
            # an arrival batch's scan: the live pending leads, oldest first, whatever the bulk
            # backlog behind or before them
            models.Index(
                fields=["created_at", "id"],
                condition=Q(distribution_state="pending", lane="live"),
                name="lead_pending_live_idx",
            ),
            models.Index(fields=["owner", "status"]),
            models.Index(
                fields=["held_until"], condition=Q(status="held"), name="lead_held_until_idx"
            ),
            models.Index(
                fields=["sla_due_at"],
                condition=Q(sla_due_at__isnull=False),
                name="lead_sla_due_idx",
            ),
            models.Index(fields=["rule", "status", "created_at"]),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip() or self.email or "lead"
        return f"#{self.pk} {name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def normalise(self) -> None:
        """Fill the normalised e-mail/phone used for duplicate look-ups."""
        self.email_normalized = normalise_email(self.email)
        self.phone_normalized = normalise_phone(self.phone)

    def can_transition_to(self, new: str) -> bool:
        return new in ALLOWED_TRANSITIONS.get(self.status, frozenset())

    def transition_to(self, new: str, *, by: Any = None, note: str = "") -> LeadEvent | None:
        """Move to status NEW if the map allows it; returns the (unsaved) timeline event."""
        if new == self.status:
            return None
        if not self.can_transition_to(new):
            raise InvalidTransition(f"lead {self.pk}: {self.status} → {new} is not allowed")
        old, self.status = self.status, new
        self.status_changed_at = timezone.now()
        actor = by if getattr(by, "pk", None) else None
        return LeadEvent(
            lead=self,
            kind=LeadEvent.Kind.STATUS,
            actor=actor,
            message=note or f"{old} → {new}",
            data={"from": old, "to": new},
        )

    def field_values(self) -> dict[str, Any]:
        """Lead columns by name, as routing filters see them."""
        values = {name: getattr(self, name) for name in self.COLUMN_FIELDS}
        values.update(
            status=self.status,
            source=self.source.slug if self.source_id and self.source else None,
            campaign=self.campaign.slug if self.campaign_id and self.campaign else None,
        )
        return values


class Activity(models.Model):
    """Work logged on a lead: calls, e-mails, meetings, outcomes."""

    class Kind(models.TextChoices):
        CALL_ATTEMPT = "call_attempt", "Call attempt"
        CONTACT_MADE = "contact_made", "Contact made"
        EMAIL = "email", "E-mail"
        NOTE = "note", "Note"
        MEETING = "meeting", "Meeting"
        QUALIFIED = "qualified", "Qualified"
        CONVERTED = "converted", "Converted"
        LOST = "lost", "Lost"
        STATUS_CHANGE = "status_change", "Status change"
        NEW_LEAD = "new_lead", "New lead (initial activity)"

    CONTACT_ATTEMPT_KINDS: ClassVar[frozenset[str]] = frozenset(
        {"call_attempt", "contact_made", "email", "meeting"}
    )

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activities",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["agent", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.lead_id}"


class LeadEvent(models.Model):
    """The lead's timeline: what happened to it, when, and by whom."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        DUPLICATE = "duplicate", "Duplicate linked"
        STATUS = "status", "Status changed"
        QUEUED = "queued", "Queued for distribution"
        ROUTED = "routed", "Routed"
        OFFERED = "offered", "Offered"
        CLAIMED = "claimed", "Claimed"
        ASSIGNED = "assigned", "Assigned"
        EXPIRED = "expired", "Offer expired"
        DISTRIBUTED = "distributed", "Distributed to contracts"
        MERGED = "merged", "Duplicate merged"
        UNLINKED = "unlinked", "Duplicate unlinked"
        NOTE = "note", "Note"

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"
