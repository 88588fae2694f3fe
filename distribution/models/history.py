"""The history of every distribution attempt, with its explanation."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class DistributionAttempt(models.Model):
    """One attempt to distribute a lead — by the system, a manager or a simulation: the
    rules tried, the candidates ranked with their reason codes, the outcome and duration."""

    class Trigger(models.TextChoices):
        ARRIVAL = "arrival", "Lead arrived"
        SWEEPER = "sweeper", "Re-queued by the sweeper"
        COMMAND = "command", "distribute_pending"
        EXPIRY = "expiry", "Offer expired"
        DECLINE = "decline", "Offer declined"
        CLAIM = "claim", "Claimed"
        PULL = "pull", "Pulled"
        MANUAL = "manual", "Manual (manager)"
        ENABLE = "enable", "Rule enabled"
        SCHEDULE = "schedule", "Opening hours began"
        SLA = "sla", "Contact SLA missed"
        AUTOMATION = "automation", "Automation"
        RECHECK = "recheck", "Window recheck"
        SIMULATE = "simulate", "Simulation"

    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="distribution_attempts"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    rule_name = models.CharField(max_length=200, blank=True)
    rules_tried = models.JSONField(
        default=list, blank=True, help_text="Each rule tried and why it did or did not match"
    )
    candidates = models.JSONField(
        default=list, blank=True, help_text="Ranked candidates with their reason codes"
    )
    all_candidates = models.JSONField(
        default=dict,
        blank=True,
        help_text="Every candidate with its reason, compact (columnar; decoded for display)",
    )
    outcome = models.CharField(max_length=40)
    reason = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} → {self.outcome}"
