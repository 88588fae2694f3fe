"""The delivery log (DESIGN §4 "Delivery to buyers"): one row per attempt to hand an
outbound lead to its buyer by webhook or e-mail."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DeliveryAttempt(models.Model):
    """One attempt: the request sent (headers minus secrets, body), the buyer's answer
    (status, first 2 KB), what it settled and why, and how long it took."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        REJECTED = "rejected", "Rejected by the buyer"
        RETRIED = "retried", "Not answered in time; retried later"
        FAILED = "failed", "Failed (no retry left, or refused)"

    outbound = models.ForeignKey(
        "distribution.OutboundLead", on_delete=models.CASCADE, related_name="delivery_attempts_log"
    )
    # the inbound lead, kept beside the outbound lead so its history lists the attempts
    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    attempt = models.PositiveSmallIntegerField(help_text="1 for the first try")
    method = models.CharField(max_length=10, help_text="webhook or email")
    url = models.CharField(max_length=500, blank=True, help_text="The URL, or the address")
    request_headers = models.JSONField(default=dict, blank=True)
    request_body = models.TextField(blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The first 2 KB of the answer")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=200, blank=True)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["outbound", "attempt"], name="delivery_outbound_idx"),
            models.Index(fields=["lead", "created_at"], name="delivery_lead_idx"),
            models.Index(fields=["outcome", "created_at"], name="delivery_outcome_idx"),
        ]

    def __str__(self) -> str:
        answer = self.status_code or self.reason or "—"
        return f"#{self.attempt} {self.method} → {answer} ({self.outcome})"
