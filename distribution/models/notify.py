"""The log of the outbound (telephony) webhook: one row per HTTP attempt."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookAttempt(models.Model):
    """One POST of a notification to NOTIFY_WEBHOOK_URL: which try it was, what came back
    (a status code, or the error when none did), how long it took, and what follows."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "Delivered (2xx)"
        RETRYING = "retrying", "Failed, will be retried"
        REJECTED = "rejected", "Rejected by the receiver (4xx, not retried)"
        FAILED = "failed", "Failed, no retry left"

    lead = models.ForeignKey(
        "leads.Lead", on_delete=models.CASCADE, related_name="webhook_attempts"
    )
    event = models.CharField(max_length=40, help_text="offer, claimed, …")
    url = models.URLField(max_length=500)
    attempt = models.PositiveSmallIntegerField(help_text="1 for the first try")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="When no answer came")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    duration_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "created_at"])]

    def __str__(self) -> str:
        answer = self.status_code or self.error or "—"
        return f"{self.event} #{self.attempt} → {answer}"
