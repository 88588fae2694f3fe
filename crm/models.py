"""Buyers: companies, their locations, and their contracts (what marketplace leads are sold
to). The marketplace engine reads these through `distribution.loaders.marketplace`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now as _now

from accounts.models import validate_timezone


def default_timezone() -> str:
    return str(settings.TIME_ZONE)


def default_return_window() -> timedelta:
    return timedelta(days=7)


class Company(models.Model):
    """A buyer account; its locations define where its contracts' service areas are."""

    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(default=True, help_text="Inactive companies get no leads.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """An account location (WGS84); service areas are measured from the nearest one."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="locations")
    name = models.CharField(max_length=200)
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])

    class Meta:
        ordering = ["company", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="location_unique_name"),
            models.CheckConstraint(
                condition=Q(latitude__gte=-90, latitude__lte=90), name="location_latitude_range"
            ),
            models.CheckConstraint(
                condition=Q(longitude__gte=-180, longitude__lte=180),
                name="location_longitude_range",
            ),
        ]
        # Selection reads a campaign's locations by company (decision M14).
        indexes = [
            models.Index(
                fields=["company", "latitude", "longitude"], name="location_company_latlon_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.company}: {self.name}"


class ContractGroup(models.Model):
    """Contracts of one buyer across accounts: a lead never reaches two of them."""

    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryMethod(models.TextChoices):
    """DESIGN §4 "Delivery to buyers": how a sold lead reaches the buyer."""

    PORTAL = "portal", "Portal (the buyer's pages and API)"
    WEBHOOK = "webhook", "Webhook (HTTP POST to the buyer's URL)"
    EMAIL = "email", "E-mail (text + HTML to the buyer's address)"


class DeliveryFormat(models.TextChoices):
    JSON = "json", "JSON"
    FORM = "form", "Form-encoded"


class Contract(models.Model):
    """What a company buys: leads of one campaign, at a price, within an area and caps."""

    name = models.CharField(max_length=200, unique=True)
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="contracts")
    campaign = models.ForeignKey(
        "leads.Campaign", on_delete=models.PROTECT, related_name="contracts"
    )
    group = models.ForeignKey(
        ContractGroup,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contracts",
        help_text="One lead never reaches two contracts of a group.",
    )
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal(0))]
    )
    quality_score = models.FloatField(default=0, help_text="QS: higher is preferred.")
    trial = models.BooleanField(default=False, help_text="A free-trial contract.")
    active = models.BooleanField(default=True)
    paused = models.BooleanField(
        default=False, help_text="Paused by the buyer; resumes without other changes."
    )
    starts = models.DateField(null=True, blank=True)
    ends = models.DateField(null=True, blank=True, help_text="Last day (inclusive).")
    radius_km = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Service area around the company's locations; empty = anywhere.",
    )
    max_share_count = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="At most this many (non-cherry-picked) outbound leads of one inbound lead "
        "when this contract has it; 1 = exclusive.",
    )
    cap_day = models.PositiveIntegerField(null=True, blank=True)
    cap_week = models.PositiveIntegerField(null=True, blank=True)
    cap_month = models.PositiveIntegerField(null=True, blank=True)
    budget_day = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    budget_week = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    budget_month = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    timezone = models.CharField(
        max_length=64,
        default=default_timezone,
        validators=[validate_timezone],
        help_text="Cap windows and delivery hours are in this zone.",
    )
    max_lead_age = models.DurationField(
        null=True, blank=True, help_text="Older leads are not delivered."
    )
    return_window = models.DurationField(
        default=default_return_window,
        help_text="How long after a sale the buyer may return the lead (DESIGN §4).",
    )
    min_lead_score = models.FloatField(
        null=True, blank=True, help_text="Leads need attributes.score at least this."
    )
    # --- delivery to the buyer (DESIGN §4, config `contracts[].delivery`) ---
    delivery_method = models.CharField(
        max_length=10, choices=DeliveryMethod.choices, default=DeliveryMethod.PORTAL
    )
    delivery_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Webhook: the buyer's URL (http or https).",
    )
    delivery_format = models.CharField(
        max_length=4, choices=DeliveryFormat.choices, default=DeliveryFormat.JSON
    )
    delivery_headers = models.JSONField(
        default=dict, blank=True, help_text='Extra headers, e.g. {"Authorization": "Bearer …"}.'
    )
    delivery_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text='Their field → our lead field or "=literal"; empty: every lead field of '
        "the API's POST body plus lead_id, outbound_id, contract, price.",
    )
    delivery_secret = models.CharField(
        max_length=200, blank=True, help_text="Signs each webhook (Leadrouter-Signature)."
    )
    delivery_timeout = models.DurationField(default=timedelta(seconds=10))
    delivery_accept_field = models.CharField(
        max_length=200,
        blank=True,
        help_text="A JSON field of the buyer's answer (dot path); empty: any 2xx accepts.",
    )
    delivery_accept_in = models.JSONField(
        default=list, blank=True, help_text="The values of that field that mean accepted."
    )
    delivery_reason_field = models.CharField(
        max_length=200,
        blank=True,
        help_text="The JSON field (dot path) giving a rejection's reason.",
    )
    delivery_retries = models.PositiveSmallIntegerField(
        default=3, help_text="Retries after the first try (5xx, 408, 429, timeouts, errors)."
    )
    delivery_retry_after = models.DurationField(
        default=timedelta(seconds=30), help_text="First wait; then 4× and 16× that."
    )
    delivery_email = models.EmailField(blank=True, help_text="E-mail: the buyer's address.")
    # Written by the marketplace services when the contract is sold a lead (round robin
    # orders by it); kept on the row so selection needs no aggregate over outbound leads.
    last_outbound_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=_now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="contract_price_nonnegative"),
            models.CheckConstraint(
                condition=Q(max_share_count__gte=1), name="contract_share_count_positive"
            ),
            models.CheckConstraint(
                condition=Q(starts__isnull=True)
                | Q(ends__isnull=True)
                | Q(ends__gte=models.F("starts")),
                name="contract_dates_ordered",
            ),
        ]
        indexes = [models.Index(fields=["campaign", "active"], name="contract_campaign_idx")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.starts and self.ends and self.ends < self.starts:
            raise ValidationError({"ends": "The contract cannot end before it starts."})
        if self.delivery_method == DeliveryMethod.WEBHOOK and not self.delivery_url:
            raise ValidationError({"delivery_url": "A webhook contract needs a URL."})
        if self.delivery_method == DeliveryMethod.EMAIL and not self.delivery_email:
            raise ValidationError({"delivery_email": "An e-mail contract needs an address."})

    @property
    def has_caps(self) -> bool:
        """True when a count or budget cap is set."""
        return any(
            v is not None
            for v in (
                self.cap_day,
                self.cap_week,
                self.cap_month,
                self.budget_day,
                self.budget_week,
                self.budget_month,
            )
        )


class DeliveryInterval(models.Model):
    """Weekly hours a contract accepts leads, in the contract's time zone; a contract with
    none accepts them at any time. An end at or before the start runs past midnight."""

    class Weekday(models.IntegerChoices):
        MON = 0, "Monday"
        TUE = 1, "Tuesday"
        WED = 2, "Wednesday"
        THU = 3, "Thursday"
        FRI = 4, "Friday"
        SAT = 5, "Saturday"
        SUN = 6, "Sunday"

    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="delivery_intervals"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField(help_text="Exclusive; 00:00 is the end of the day.")

    class Meta:
        ordering = ["contract", "weekday", "start"]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"
