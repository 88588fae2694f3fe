"""Agent routing state: schedules, pools, rules, offers, the received log and automations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import validate_timezone
from leads.models import Activity

WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


class Schedule(models.Model):
    """Working hours: a time zone, weekly intervals (several a day = shifts) and holidays."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    holiday_country = models.CharField(
        max_length=2,
        blank=True,
        help_text="ISO country code: that country's public holidays close the schedule too.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScheduleInterval(models.Model):
    """A weekly open interval in local time, end exclusive; 00:00 as end = midnight."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="intervals")
    weekday = models.PositiveSmallIntegerField(choices=WEEKDAYS)
    start = models.TimeField()
    end = models.TimeField(help_text="Exclusive; 00:00 means the end of the day.")

    class Meta:
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="schedule_interval_weekday_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"


class Holiday(models.Model):
    """A closed local day of a schedule: entered, or filled from its holiday country."""

    class Origin(models.TextChoices):
        MANUAL = "manual", "Entered"
        COUNTRY = "country", "From the holiday country"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "date"], name="holiday_unique_schedule_date"
            )
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class CapFields(models.Model):
    """Maximum leads per calendar hour, day, week and month (blank = no cap)."""

    cap_hour = models.PositiveIntegerField(null=True, blank=True)
    cap_day = models.PositiveIntegerField(null=True, blank=True)
    cap_week = models.PositiveIntegerField(null=True, blank=True)
    cap_month = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def caps(self) -> dict[str, int | None]:
        return {
            "hour": self.cap_hour,
            "day": self.cap_day,
            "week": self.cap_week,
            "month": self.cap_month,
        }


class Pool(CapFields):
    """A group of agents a rule distributes to; its caps bound the leads the whole pool
    receives per calendar hour, day, week and month (beside each member's own caps)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PoolMember(CapFields):
    """An agent in a pool: weight, position (round-robin tie order), caps, lead filters."""

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="members")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pool_memberships"
    )
    weight = models.DecimalField(max_digits=8, decimal_places=2, default=1)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    filters = models.JSONField(
        default=list, blank=True, help_text='User filters: [{"field", "op", "value"}]'
    )

    class Meta:
        ordering = ["pool", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "agent"], name="pool_member_unique_agent"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="pool_member_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} in {self.pool}"


class Strategy(models.TextChoices):
    NONE = "none", "None (store as prospect)"
    ROUND_ROBIN = "round_robin", "Round robin"
    BROADCAST = "broadcast", "Broadcast (piranha / distribute all / ring all)"
    DIRECT = "direct", "Direct (AssignToEmail / AssignToUserId)"
    LOAD_BALANCED = "load_balanced", "Load balanced (fewest open leads)"
    WEIGHTED = "weighted", "Weighted"
    PERFORMANCE = "performance", "Performance (conversion rate)"
    PULL = "pull", "Pull (get lead button)"
    HOPPER = "hopper", "Hopper (shared queue)"
    MANUAL = "manual", "Manual (Lead Assignment queue)"


class AfterHours(models.TextChoices):
    HOLD = "hold", "Hold until the schedule opens"
    OFFER_NOW = "offer_now", "Offer now, timer starts at the opening"
    UNASSIGNED = "unassigned", "To the Lead Assignment queue"


class InitialStatus(models.TextChoices):
    ASSIGNED = "assigned", "Assigned"
    WORKING = "working", "Working"
    CONTACTED = "contacted", "Contacted"
    QUALIFIED = "qualified", "Qualified"


# Seed 003: "the list of initial activities will reflect the status selection" — the
# activities a lead may start with in each initial status (the first is the usual one).
INITIAL_ACTIVITIES: dict[str, tuple[str, ...]] = {
    InitialStatus.ASSIGNED: (Activity.Kind.NEW_LEAD, Activity.Kind.NOTE),
    InitialStatus.WORKING: (
        Activity.Kind.NEW_LEAD,
        Activity.Kind.CALL_ATTEMPT,
        Activity.Kind.EMAIL,
        Activity.Kind.NOTE,
    ),
    InitialStatus.CONTACTED: (
        Activity.Kind.CONTACT_MADE,
        Activity.Kind.EMAIL,
        Activity.Kind.MEETING,
        Activity.Kind.NOTE,
    ),
    InitialStatus.QUALIFIED: (
        Activity.Kind.QUALIFIED,
        Activity.Kind.MEETING,
        Activity.Kind.NOTE,
    ),
}
# Strategies whose leads end with an agent through the rule (assigned now, or offered /
# pulled / picked from the hopper and assigned on the claim), so the lead takes the rule's
# initial status and activity: a rule of these must set both. `none` never assigns;
# `manual` leaves it to a manager (the pair, when set, still applies then).
ASSIGNING_STRATEGIES = frozenset(
    {
        Strategy.ROUND_ROBIN,
        Strategy.BROADCAST,
        Strategy.DIRECT,
        Strategy.LOAD_BALANCED,
        Strategy.WEIGHTED,
        Strategy.PERFORMANCE,
        Strategy.PULL,
        Strategy.HOPPER,
    }
)


def initial_pair_errors(strategy: str, status: str, activity: str) -> dict[str, str]:
    """What is wrong with a rule's initial status and activity, by field (empty: nothing).
    One check for the admin form (Rule.clean) and config files."""
    strategy, status, activity = str(strategy), str(status), str(activity)  # enums: values
    allowed = INITIAL_ACTIVITIES.get(status)
    if allowed is None:
        return {"initial_status": f"{status!r} is not one of {', '.join(InitialStatus.values)}"}
    if not activity:
        if strategy in ASSIGNING_STRATEGIES:
            return {
                "initial_activity": f"required for strategy {strategy!r}: one of "
                f"{', '.join(allowed)} (for initial status {status!r})"
            }
        return {}
    if activity not in allowed:
        return {
            "initial_activity": f"{activity!r} does not follow initial status {status!r}: "
            f"one of {', '.join(allowed)}"
        }
    return {}


METRICS_WINDOW = timedelta(days=30)  # a rule's default performance-metrics window


class Rule(CapFields):
    """Which leads (sources, campaign, filters) go how (strategy) to whom (pool), and when."""

    name = models.CharField(max_length=100, unique=True)
    priority = models.IntegerField(default=100, help_text="Lower numbers are tried first.")
    enabled = models.BooleanField(
        default=False, help_text="Enabling distributes every waiting lead the rule matches."
    )
    sources = models.ManyToManyField(
        "leads.Source", blank=True, related_name="rules", help_text="Empty = any source."
    )
    campaign = models.ForeignKey(
        "leads.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="rules"
    )
    filters = models.JSONField(
        default=list, blank=True, help_text='Lead filters: [{"field", "op", "value"}]'
    )
    strategy = models.CharField(
        max_length=20, choices=Strategy.choices, default=Strategy.ROUND_ROBIN
    )
    pool = models.ForeignKey(
        Pool, null=True, blank=True, on_delete=models.PROTECT, related_name="rules"
    )
    claim_timeout = models.DurationField(
        null=True, blank=True, help_text="Open time an offer stays claimable (blank = assign)."
    )
    max_rounds = models.PositiveIntegerField(null=True, blank=True)
    batch_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Broadcast: members offered at a time (blank = all)."
    )
    schedule = models.ForeignKey(
        Schedule,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rules",
        help_text="Blank = the organisation's business hours (none set: always open).",
    )
    after_hours = models.CharField(
        max_length=12,
        choices=AfterHours.choices,
        blank=True,
        default="",
        help_text="Blank = the organisation's after-hours policy (ring all: its own one).",
    )
    default_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pull_allotment = models.PositiveIntegerField(
        null=True, blank=True, help_text="Pull: leads a member may pull per day (blank = any)."
    )
    initial_status = models.CharField(
        max_length=12, choices=InitialStatus.choices, default=InitialStatus.ASSIGNED
    )
    initial_activity = models.CharField(
        max_length=20,
        blank=True,
        choices=Activity.Kind.choices,
        help_text="Activity kind logged on assignment.",
    )
    sticky_owner = models.BooleanField(
        default=False, help_text="A duplicate of an owned lead goes to the same owner."
    )
    tcpa = models.BooleanField(
        default=False, help_text="No auto-dial webhook outside 08:00–21:00 lead-local."
    )
    contact_sla = models.DurationField(
        null=True,
        blank=True,
        help_text="Open time to log a contact attempt before the lead is taken back.",
    )
    catch_up = models.BooleanField(
        default=False, help_text="Agents back from absence catch up on missed turns."
    )
    require_agent_hours = models.BooleanField(
        default=True, help_text="Skip members whose own schedule is closed."
    )
    metrics_window = models.DurationField(
        default=METRICS_WINDOW,
        help_text="Trailing window of the performance metrics (strategy and tiers), e.g. 30d.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        indexes = [models.Index(fields=["enabled", "priority"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        needs_pool = self.strategy in {
            Strategy.ROUND_ROBIN,
            Strategy.BROADCAST,
            Strategy.LOAD_BALANCED,
            Strategy.WEIGHTED,
            Strategy.PERFORMANCE,
            Strategy.PULL,
            Strategy.HOPPER,
        }
        errors = initial_pair_errors(
            self.strategy, self.initial_status or "", self.initial_activity or ""
        )
        if needs_pool and self.pool_id is None:
            errors["pool"] = "This strategy distributes to a pool; choose one."
        if self.metrics_window is not None and self.metrics_window <= timedelta(0):
            errors["metrics_window"] = "The metrics window must be positive."
        if errors:
            raise ValidationError(errors)


class PerformanceTier(models.Model):
    """Raise or lower a rule's member caps when a metric passes a threshold."""

    class Metric(models.TextChoices):
        SPEED_TO_CONTACT_ATTEMPT = "speed_to_contact_attempt", "Speed to contact attempt (s)"
        SPEED_TO_CONTACT = "speed_to_contact", "Speed to contact (s)"
        CONTACT_RATE = "contact_rate", "Contact rate (0–1)"
        QUALIFICATION_RATE = "qualification_rate", "Qualification rate (0–1)"
        CONVERSION_RATE = "conversion_rate", "Conversion rate (0–1)"

    class Op(models.TextChoices):
        GT = "gt", ">"
        GTE = "gte", "≥"
        LT = "lt", "<"
        LTE = "lte", "≤"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="tiers")
    metric = models.CharField(max_length=30, choices=Metric.choices)
    op = models.CharField(max_length=3, choices=Op.choices)
    threshold = models.FloatField()
    multiplier = models.FloatField()
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["rule", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(multiplier__gte=0), name="tier_multiplier_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.get_op_display()} {self.threshold:g} → ×{self.multiplier:g}"


class Offer(models.Model):
    """A lead offered to one agent: claimable until `expires_at` (null = no timer)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLAIMED = "claimed", "Claimed"
        WITHDRAWN = "withdrawn", "Withdrawn (someone else claimed it)"
        EXPIRED = "expired", "Expired"
        DECLINED = "declined", "Declined"

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="offers")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="offers"
    )
    member = models.ForeignKey(
        PoolMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="offers"
    )
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="offers"
    )
    round = models.PositiveIntegerField(default=1)
    batch = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "agent"],
                condition=Q(status="open"),
                name="offer_one_open_per_lead_agent",
            ),
        ]
        indexes = [
            # the sweeper's scan: open offers by expiry
            models.Index(
                fields=["expires_at"], condition=Q(status="open"), name="offer_open_expiry_idx"
            ),
            models.Index(fields=["agent", "status"]),
            models.Index(fields=["lead", "status"]),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} → {self.agent} ({self.status})"


class Assignment(models.Model):
    """Every lead given to an agent: the received log caps and weighted shares count.

    A row is never removed: a lead later lost or reassigned still counts in its window.
    """

    class Method(models.TextChoices):
        AUTO = "auto", "Assigned by a rule"
        CLAIM = "claim", "Claimed (offer)"
        PIN = "pin", "Claimed by PIN"
        PULL = "pull", "Pulled"
        HOPPER = "hopper", "Picked from the hopper"
        MANUAL = "manual", "Assigned by a manager"
        DEFAULT = "default", "Default agent"
        DIRECT = "direct", "Direct"
        STICKY = "sticky", "Sticky owner"
        AUTOMATION = "automation", "Automation"

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="assignments")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    pool = models.ForeignKey(
        Pool, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    method = models.CharField(max_length=12, choices=Method.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sla_missed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agent", "created_at"]),
            models.Index(fields=["pool", "agent", "created_at"]),
            models.Index(fields=["rule", "agent", "created_at"]),
            # pool caps: a pool's leads per window, whoever received them
            models.Index(fields=["pool", "created_at"], name="assignment_pool_created_idx"),
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} → {self.agent} ({self.method})"


class Notice(models.Model):
    """An in-app message to an agent (claimed by someone else, assigned, taken back)."""

    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices"
    )
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="notices"
    )
    message = models.CharField(max_length=300)
    read = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["agent", "read", "created_at"])]

    def __str__(self) -> str:
        return self.message


class Automation(models.Model):
    """On a lead event whose filters match, run one Distribute Lead action (seed 004)."""

    class Trigger(models.TextChoices):
        CREATED = "created", "Lead created"
        UPDATED = "updated", "Lead updated"
        STATUS_CHANGED = "status_changed", "Status changed"

    class Action(models.TextChoices):
        USER = "user", "To a specific user (reassigns the owner)"
        ASSIGNMENT_RULES = "assignment_rules", "Through the assignment rules"
        RULE = "rule", "Through one distribution rule"
        HOPPER = "hopper", "Into the hopper (optionally with an owner)"

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    priority = models.IntegerField(default=100)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.CREATED)
    filters = models.JSONField(default=list, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="action user: the new owner; hopper: optional owner",
    )
    target_rule = models.ForeignKey(
        Rule,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="automations",
        help_text="action rule: the rule; hopper: the hopper rule",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.action == self.Action.USER and self.target_user_id is None:
            raise ValidationError({"target_user": "Choose the user to send leads to."})
        if self.action == self.Action.RULE and self.target_rule_id is None:
            raise ValidationError({"target_rule": "Choose the rule."})
        if (
            self.action == self.Action.HOPPER
            and self.target_rule_id is not None
            and self.target_rule is not None
            and self.target_rule.strategy != Strategy.HOPPER
        ):
            raise ValidationError({"target_rule": "Choose a rule with the hopper strategy."})


class Organisation(models.Model):
    """The organisation's routing defaults (one row): business hours and after-hours policy
    that rules without their own schedule or after-hours policy inherit (seed 003)."""

    name = models.CharField(max_length=100, default="Organisation")
    business_hours = models.ForeignKey(
        Schedule,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Rules without a schedule distribute only inside these hours (blank = always).",
    )
    after_hours = models.CharField(
        max_length=12,
        choices=AfterHours.choices,
        default=AfterHours.HOLD,
        help_text="What a rule without its own policy does with a lead that arrives closed.",
    )
    ring_all_after_hours = models.CharField(
        max_length=12,
        choices=AfterHours.choices,
        default=AfterHours.UNASSIGNED,
        help_text="The same for ring-all (broadcast) rules: seed 003 sends them to Unassigned.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "organisation"
        verbose_name_plural = "organisation"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="organisation_singleton")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1  # the one row
        super().save(*args, **kwargs)
