"""Users and agents: a custom User from the first migration, and the agent's profile."""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone")


class User(AbstractUser):
    """A person who signs in: an agent, a manager, or both. Agents are found by e-mail."""

    email = models.EmailField("e-mail address", unique=True, null=True, blank=True)  # type: ignore[assignment]
    display_name = models.CharField(max_length=150, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["email"]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.email or self.username

    @property
    def name(self) -> str:
        return str(self)


class AgentProfile(models.Model):
    """What routing needs to know about an agent: reachability, availability, turns, token."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="agent")
    phone = models.CharField(max_length=40, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    active = models.BooleanField(default=True, help_text="Inactive agents never get leads.")
    available = models.BooleanField(
        default=True, help_text="Unset while away or opted out; routing skips them."
    )
    last_turn_at = models.DateTimeField(
        null=True, blank=True, help_text="When the agent last got a lead (round robin order)."
    )
    api_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    schedule = models.ForeignKey(
        "distribution.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="agents",
        help_text="The agent's own working hours (blank = always).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__email"]
        indexes = [models.Index(fields=["active", "available"])]

    def __str__(self) -> str:
        return str(self.user)


class BuyerProfile(models.Model):
    """A buyer's user (DESIGN §4 "The buyer's side"): belongs to one company, signs in at the
    shared login and lands on /buyer/; pulls leads through the buyer API with its token."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="buyer")
    company = models.ForeignKey(
        "crm.Company",
        on_delete=models.CASCADE,
        related_name="buyers",
        help_text="Sees only this company's leads.",
    )
    api_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__email"]

    def __str__(self) -> str:
        return f"{self.user} ({self.company})"
