"""Marketplace state: a campaign's workflow and its contract selection rules, the
auto-distribution windows of inbound leads, and the outbound leads sold to contracts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class WorkflowMode(models.TextChoices):
    MANUAL = "manual", "Manual distribution only"
    ON_ARRIVAL = "on_arrival", "Automatic, when the lead arrives"
    WINDOW = "window", "Automatic, with an auto-distribution window"


class SelectionMode(models.TextChoices):
    QS = "qs", "QS (quality score, then price)"
    RANDOM = "random", "Random"
    ROUND_ROBIN = "round_robin", "Round robin (oldest last outbound lead)"
    DISTANCE = "distance", "Distance (nearest location)"
    FREE_TRIAL = "free_trial", "Free trial first, then paid by price"
    TURNOVER = "turnover", "Maximise turnover"
    LEAD_COUNT = "lead_count", "Maximise outbound lead count"


class Workflow(models.Model):
    """How a campaign's leads are sold: manual, on arrival, or with a window; the maximum
    multiplication, total selection minimums and the ordered selection rules."""

    campaign = models.OneToOneField(
        "leads.Campaign", on_delete=models.CASCADE, related_name="workflow"
    )
    mode = models.CharField(
        max_length=20, choices=WorkflowMode.choices, default=WorkflowMode.ON_ARRIVAL
    )
    window_duration = models.DurationField(
        null=True,
        blank=True,
        help_text="How long a window stays open (mode window; default 1 day).",
    )
    recheck_every = models.DurationField(
        null=True, blank=True, help_text="How often a window rechecks (default 15 minutes)."
    )
    max_multiplication = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="At most this many outbound leads per inbound lead (empty: no limit).",
    )
    min_contracts = models.PositiveIntegerField(
        default=0, help_text="Distribute only when at least this many contracts are chosen."
    )
    min_turnover = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Distribute only when the chosen contracts turn over at least this.",
    )
    batch_optimal = models.BooleanField(
        default=False,
        help_text="Allocate all leads waiting in windows at once (max "
        "turnover under caps) instead of one by one on recheck.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    DEFAULT_WINDOW: ClassVar[timedelta] = timedelta(days=1)
    DEFAULT_EVERY: ClassVar[timedelta] = timedelta(minutes=15)

    class Meta:
        ordering = ["campaign__slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_multiplication__isnull=True) | Q(max_multiplication__gte=1),
                name="workflow_multiplication_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Workflow of {self.campaign}"

    def clean(self) -> None:
        if self.recheck_every is not None and self.recheck_every.total_seconds() < 1:
            raise ValidationError({"recheck_every": "Must be at least one second."})

    @property
    def is_automatic(self) -> bool:
        """True for on_arrival and window modes."""
        return self.mode != WorkflowMode.MANUAL

    @property
    def window_length(self) -> timedelta:
        return self.window_duration or self.DEFAULT_WINDOW

    @property
    def window_every(self) -> timedelta:
        return self.recheck_every or self.DEFAULT_EVERY


class SelectionRule(models.Model):
    """A contract selection rule: take at most `take` contracts in `mode` order; skipped
    when its selection turns over less than `min_turnover`."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="selection_rules")
    position = models.PositiveIntegerField(default=1)
    mode = models.CharField(max_length=20, choices=SelectionMode.choices, default=SelectionMode.QS)
    take = models.PositiveIntegerField(default=1)
    min_turnover = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["workflow", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "position"], name="selection_rule_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_mode_display()} × {self.take}"


class WindowStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"
    FINISHED = "finished", "Finished"


OPEN_WINDOW_STATUSES = (WindowStatus.ACTIVE, WindowStatus.PAUSED)


class DistributionWindow(models.Model):
    """An auto-distribution window: the lead is rechecked every `every` until `ends_at` or
    until it reaches its maximum multiplication. At most one open window per lead."""

    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="distribution_windows"
    )
    status = models.CharField(
        max_length=10, choices=WindowStatus.choices, default=WindowStatus.ACTIVE
    )
    started_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    every = models.DurationField()
    next_check_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead"],
                condition=Q(status__in=["active", "paused"]),
                name="window_one_open_per_lead",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_check_at"], name="window_due_idx")]

    def __str__(self) -> str:
        return f"Window on lead #{self.lead_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        """Active or paused: the lead is in a window."""
        return self.status in OPEN_WINDOW_STATUSES


class OutboundMethod(models.TextChoices):
    AUTO = "auto", "Automatic"
    MANUAL = "manual", "Manual"
    CHERRY_PICK = "cherry_pick", "Cherry-picked"


class ReturnStatus(models.TextChoices):
    NONE = "", "Not returned"
    REQUESTED = "requested", "Return requested"
    APPROVED = "approved", "Return approved"
    DENIED = "denied", "Return denied"


class DeliveryStatus(models.TextChoices):
    """DESIGN §4 "What a rejection means": where the sale stands with the buyer. A portal
    sale is delivered when sold; a webhook or e-mail one is pending until its first attempt
    settles it. Rejected and failed ones were not sold (they count nowhere)."""

    PENDING = "pending", "Pending delivery"
    DELIVERED = "delivered", "Delivered"
    REJECTED = "rejected", "Rejected by the buyer"
    FAILED = "failed", "Delivery failed"
    RETURNED = "returned", "Returned (approved)"


class OutboundLead(models.Model):
    """An inbound lead delivered to one contract. Cherry-picked ones, and approved returns
    (for caps and budgets), are not counted by distribution."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="outbound")
    contract = models.ForeignKey("crm.Contract", on_delete=models.PROTECT, related_name="outbound")
    method = models.CharField(max_length=12, choices=OutboundMethod.choices)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal(0))]
    )
    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    window = models.ForeignKey(
        DistributionWindow,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound",
    )
    status = models.CharField(
        max_length=10,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.DELIVERED,
        help_text="Delivery to the buyer (§4): portal sales are delivered when sold",
    )
    return_status = models.CharField(
        max_length=10, choices=ReturnStatus.choices, blank=True, default=ReturnStatus.NONE
    )
    return_reason = models.CharField(max_length=500, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    return_decided_at = models.DateTimeField(null=True, blank=True)
    return_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    return_note = models.CharField(max_length=500, blank=True)
    # Delivery (webhook / e-mail): the next attempt's time while pending (a database timer,
    # run by the task after the sale, Beat and `deliver_pending`), the attempts made, and why
    # a rejected or failed one did not go through (the buyer's reason, http_<status>, …).
    delivery_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    delivery_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    delivery_reason = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["lead", "contract"], name="outbound_unique_contract"),
            models.CheckConstraint(condition=Q(price__gte=0), name="outbound_price_nonnegative"),
        ]
        indexes = [
            # cap and budget usage: a contract's outbound leads since a window start
            models.Index(fields=["contract", "created_at"], name="outbound_usage_idx"),
            models.Index(fields=["return_status", "created_at"], name="outbound_return_idx"),
            models.Index(
                fields=["delivery_due_at"],
                name="outbound_delivery_due_idx",
                condition=Q(delivery_due_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Lead #{self.lead_id} → {self.contract}"

    @property
    def counts_as_distributed(self) -> bool:
        """Cherry-picked outbound leads never count as distributed."""
        return self.method != OutboundMethod.CHERRY_PICK

    @property
    def counts_toward_caps(self) -> bool:
        """Counted toward caps and budgets: not cherry-picked and not an approved return."""
        return self.counts_as_distributed and self.return_status != ReturnStatus.APPROVED


class MarketVersion(models.Model):
    """One row whose `generation` changes whenever anything a contract snapshot is built from
    changes (contracts, companies, locations, delivery hours, outbound leads returned or
    deleted). Database triggers write it (migration 0004), so admin edits, config files,
    bulk updates and raw SQL all count; selection caches its compiled contracts per process
    while the generation it read is current. Commits make the new value visible together
    with the change; a rolled-back change leaves no trace."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    generation = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "market version"

    def __str__(self) -> str:
        return f"market generation {self.generation}"
