"""Frozen input snapshots and output decisions of the agent-routing engine.

Inputs are plain values loaded by the services layer; the engine never reads the clock or the
database. String-valued settings (strategy, operators, periods) are plain ``str`` so that model
fields can be passed as they are; they are validated on construction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# --- vocabularies -------------------------------------------------------------------------

PERIODS: tuple[str, ...] = ("hour", "day", "week", "month")

STRATEGIES: frozenset[str] = frozenset(
    {
        "none",
        "round_robin",
        "broadcast",
        "direct",
        "load_balanced",
        "weighted",
        "performance",
        "pull",
        "hopper",
        "manual",
    }
)
# Strategies that push a lead to someone now (and so obey the rule's after-hours policy).
PUSH_STRATEGIES: frozenset[str] = frozenset(
    {"round_robin", "broadcast", "direct", "load_balanced", "weighted", "performance"}
)

AFTER_HOURS: frozenset[str] = frozenset({"hold", "offer_now", "unassigned"})

FILTER_OPS: frozenset[str] = frozenset(
    {"eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "is_empty", "within_km"}
)

# where a rule's schedule / after-hours policy comes from: its own, or the organisation's
ORIGINS: frozenset[str] = frozenset({"rule", "organisation"})
DEFAULT_METRICS_WINDOW = timedelta(days=30)

METRICS: frozenset[str] = frozenset(
    {
        "speed_to_contact_attempt",
        "speed_to_contact",
        "contact_rate",
        "qualification_rate",
        "conversion_rate",
    }
)
TIER_OPS: frozenset[str] = frozenset({"gt", "gte", "lt", "lte"})

Outcome = Literal[
    "assign",
    "offer",
    "prospect",
    "queue_unassigned",
    "exception",
    "hold",
    "wait_pull",
    "wait_hopper",
]

# Lead status (DESIGN §7 vocabulary) that each outcome leads to.
OUTCOME_STATUS: Mapping[str, str] = {
    "assign": "assigned",
    "offer": "offered",
    "prospect": "prospect",
    "queue_unassigned": "unassigned",
    "exception": "exception",
    "hold": "held",
    "wait_pull": "waiting",
    "wait_hopper": "waiting",
}

# Member rejection reason codes, in the order eligibility checks them.
MEMBER_INACTIVE = "member_inactive"
AGENT_INACTIVE = "agent_inactive"
UNAVAILABLE = "unavailable"
FILTER_MISMATCH = "filter_mismatch"
OUTSIDE_HOURS = "outside_hours"
ON_HOLIDAY = "on_holiday"
CAP_REACHED = "cap_reached"
POOL_CAP_REACHED = "pool_cap_reached"  # the whole pool received its cap in a window
ALREADY_OFFERED = "already_offered"
ALLOTMENT_REACHED = "allotment_reached"  # pull only: the member's daily pull allotment is used
NOT_MEMBER = "not_member"  # pull only: the agent is not in the rule's pool

# Rule-matching reason codes.
RULE_DISABLED = "rule_disabled"
SOURCE_MISMATCH = "source_mismatch"
CAMPAIGN_MISMATCH = "campaign_mismatch"
RULE_FILTER_MISMATCH = "filter_mismatch"

# Decision reason codes.
NO_RULE_MATCHED = "no_rule_matched"
STRATEGY_NONE = "strategy_none"
STRATEGY_MANUAL = "strategy_manual"
WAIT_PULL = "pull_queue"
WAIT_HOPPER = "hopper_queue"
AFTER_HOURS_HOLD = "after_hours_hold"
AFTER_HOURS_UNASSIGNED = "after_hours_unassigned"
SCHEDULE_NEVER_OPEN = "schedule_never_open"
ASSIGNED = "assigned"
OFFERED = "offered"
NO_ELIGIBLE_MEMBER = "no_eligible_member"
MAX_ROUNDS_REACHED = "max_rounds_reached"
DIRECT_NO_TARGET = "direct_no_target"
DIRECT_UNKNOWN_TARGET = "direct_unknown_target"
DIRECT_TARGET_INELIGIBLE = "direct_target_ineligible"
DEFAULT_AGENT = "default_agent"
NOTHING_TO_PULL = "nothing_to_pull"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# --- schedules ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """One weekly open interval in local wall-clock time, end exclusive.

    ``end == time(0)`` means the end of the day ("24:00"); an ``end`` at or before ``start``
    means the interval runs past midnight into the next day (a night shift).
    """

    weekday: int  # 0 = Monday … 6 = Sunday
    start: time
    end: time

    def __post_init__(self) -> None:
        _check(0 <= self.weekday <= 6, f"weekday must be 0..6, got {self.weekday}")
        _check(
            self.start.tzinfo is None and self.end.tzinfo is None,
            "interval times are local wall-clock times and must be naive",
        )


@dataclass(frozen=True, slots=True)
class ScheduleSnapshot:
    """Working hours: a time zone, weekly intervals (several a day = shifts) and holidays."""

    timezone: str
    intervals: tuple[Interval, ...] = ()
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # raises for an unknown zone name

    @property
    def tz(self) -> ZoneInfo:
        """The schedule's zone (ZoneInfo caches instances, so this is cheap)."""
        return ZoneInfo(self.timezone)


# --- filters ------------------------------------------------------------------------------


def within_km_target(value: object) -> tuple[float, float, float]:
    """Parse a ``within_km`` value: ``{"lat", "lon", "km"}`` or ``[lat, lon, km]``."""
    raw: list[object]
    if isinstance(value, Mapping):
        lat = value.get("lat", value.get("latitude"))
        lon = value.get("lon", value.get("lng", value.get("longitude")))
        km = value.get("km", value.get("radius_km"))
        raw = [lat, lon, km]
    elif isinstance(value, list | tuple) and len(value) == 3:
        raw = list(value)
    else:
        raise ValueError(f"within_km needs {{lat, lon, km}} or [lat, lon, km], got {value!r}")
    try:
        lat_f, lon_f, km_f = (float(str(v)) for v in raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"within_km values must be numbers, got {value!r}") from exc
    _check(all(math.isfinite(v) for v in (lat_f, lon_f, km_f)), "within_km values must be finite")
    _check(-90 <= lat_f <= 90 and -180 <= lon_f <= 180, f"bad coordinates in {value!r}")
    _check(km_f >= 0, "within_km radius must not be negative")
    return lat_f, lon_f, km_f


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition ``field op value`` over a lead column or, failing that, an attribute."""

    field: str
    op: str
    value: object = None

    def __post_init__(self) -> None:
        _check(self.op in FILTER_OPS, f"unknown filter operator {self.op!r}")
        if self.op == "within_km":
            within_km_target(self.value)

    def describe(self) -> str:
        """Human form, e.g. ``postcode eq '1012'``."""
        return f"{self.field} {self.op} {self.value!r}"


# --- caps and performance -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caps:
    """Maximum leads per calendar hour, day, week (Monday start) and month; None = no cap."""

    hour: int | None = None
    day: int | None = None
    week: int | None = None
    month: int | None = None

    def __post_init__(self) -> None:
        for period in PERIODS:
            cap = self.get(period)
            _check(cap is None or cap >= 0, f"{period} cap must not be negative")

    def get(self, period: str) -> int | None:
        """The cap for ``period`` (hour, day, week or month)."""
        value: int | None = getattr(self, period)
        return value

    def items(self) -> list[tuple[str, int]]:
        """The set caps as ``(period, cap)`` pairs, shortest period first."""
        return [(p, c) for p in PERIODS if (c := self.get(p)) is not None]

    def merged_over(self, defaults: Caps) -> Caps:
        """These caps, with each unset period taken from ``defaults``."""
        return Caps(*(self.get(p) if self.get(p) is not None else defaults.get(p) for p in PERIODS))


@dataclass(frozen=True, slots=True)
class ReceivedCounts:
    """Leads already received in the current hour/day/week/month windows (pre-counted)."""

    hour: int = 0
    day: int = 0
    week: int = 0
    month: int = 0

    def get(self, period: str) -> int:
        """The count for ``period``."""
        value: int = getattr(self, period)
        return value


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A pool's own caps (the whole group, every member together) and the leads it received
    in the current windows (counted in the rule's cap zone)."""

    caps: Caps
    counts: ReceivedCounts = ReceivedCounts()

    def binding(self) -> tuple[str, int, int] | None:
        """The first exhausted pool cap as ``(period, cap, received)``, or None."""
        for period, cap in self.caps.items():
            received = self.counts.get(period)
            if received >= cap:
                return period, cap, received
        return None


@dataclass(frozen=True, slots=True)
class AgentMetrics:
    """Per-agent performance over a trailing window (see ``engine.metrics``); None = no data."""

    leads: int = 0
    speed_to_contact_attempt: timedelta | None = None
    speed_to_contact: timedelta | None = None
    contact_rate: float | None = None
    qualification_rate: float | None = None
    conversion_rate: float | None = None

    def value(self, metric: str) -> float | None:
        """The metric as a number: rates as fractions 0..1, speeds in seconds."""
        _check(metric in METRICS, f"unknown metric {metric!r}")
        raw: timedelta | float | None = getattr(self, metric)
        if isinstance(raw, timedelta):
            return raw.total_seconds()
        return raw


@dataclass(frozen=True, slots=True)
class PerformanceTier:
    """Scale a member's caps when a metric passes a threshold (speeds in seconds, rates 0..1)."""

    metric: str
    op: str
    threshold: float
    multiplier: float

    def __post_init__(self) -> None:
        _check(self.metric in METRICS, f"unknown metric {self.metric!r}")
        _check(self.op in TIER_OPS, f"tier operator must be one of {sorted(TIER_OPS)}")
        _check(self.multiplier >= 0, "tier multiplier must not be negative")


# --- agents, members, leads, rules --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """An agent (User + AgentProfile) as routing sees it."""

    id: int
    email: str
    active: bool = True
    available: bool = True
    schedule: ScheduleSnapshot | None = None  # the agent's own working hours
    last_turn_at: datetime | None = None  # last assignment, manual or automatic, any pool
    open_leads: int = 0  # leads the agent owns that are still open (load_balanced)
    metrics: AgentMetrics | None = None  # trailing-window performance (performance strategy)


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """An agent's membership of the pool a rule distributes to.

    Caps count every lead the member was given in the current window, whatever became of
    it (a lost or reassigned lead gives no quota back). Give either ``received_at`` (the
    timestamps, at least those of the current month) or ``received_counts`` (pre-counted
    from ``caps.window_start(period, now, rule tz)``); ``received_counts`` wins when set.
    """

    id: int
    agent: AgentSnapshot
    position: int = 0
    weight: float = 1.0
    active: bool = True
    caps: Caps = Caps()
    filters: tuple[Filter, ...] = ()
    received_at: tuple[datetime, ...] = ()
    received_counts: ReceivedCounts | None = None

    def __post_init__(self) -> None:
        _check(self.weight > 0, f"member weight must be positive, got {self.weight}")

    @property
    def agent_id(self) -> int:
        """The member's agent (user) id."""
        return self.agent.id

    @property
    def email(self) -> str:
        """The member's agent e-mail."""
        return self.agent.email


@dataclass(frozen=True, slots=True)
class LeadSnapshot:
    """A lead: its columns in ``fields``, free-form ``attributes``, source and campaign slugs."""

    id: int
    source: str | None
    campaign: str | None
    created_at: datetime
    fields: Mapping[str, object] = field(default_factory=dict)
    attributes: Mapping[str, object] = field(default_factory=dict)

    def value(self, name: str) -> tuple[bool, object]:
        """``(found, value)`` of a lead column or, failing that, an attribute."""
        if name == "source":
            return True, self.source
        if name == "campaign":
            return True, self.campaign
        if name in self.fields:
            return True, self.fields[name]
        if name in self.attributes:
            return True, self.attributes[name]
        return False, None

    @property
    def assign_to_email(self) -> str | None:
        """The normalised ``assign_to_email`` column, or None when blank."""
        raw = self.fields.get("assign_to_email")
        text = str(raw).strip().casefold() if raw is not None else ""
        return text or None

    @property
    def assign_to_user_id(self) -> int | None:
        """The ``assign_to_user_id`` column as an int, or None when blank or not a number."""
        raw = self.fields.get("assign_to_user_id")
        if raw is None or isinstance(raw, bool):
            return None
        try:
            return int(str(raw).strip())
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RuleSnapshot:
    """A distribution rule: what it matches, how it distributes, and its fallbacks."""

    id: int
    name: str
    strategy: str
    priority: int = 100
    enabled: bool = True
    sources: frozenset[str] = frozenset()  # source slugs; empty = any source
    campaign: str | None = None  # campaign slug; None = any campaign
    filters: tuple[Filter, ...] = ()
    pool_id: int | None = None
    claim_timeout: timedelta | None = None  # open time an offer stays claimable
    max_rounds: int | None = None  # unclaimed rounds before the fallback; None = until exhausted
    batch_size: int | None = None  # broadcast: members offered per round; None = all
    schedule: ScheduleSnapshot | None = None
    after_hours: str = "hold"
    default_agent: AgentSnapshot | None = None
    caps: Caps = Caps()  # default per-member caps, for periods a member does not set
    pull_allotment: int | None = None  # pull: leads a member may pull per day (rule zone)
    tiers: tuple[PerformanceTier, ...] = ()
    catch_up: bool = False  # weighted: a member back from absence catches up on missed shares
    require_agent_hours: bool = True  # reject members whose own schedule is closed
    timezone: str | None = None  # cap windows; default: the schedule's zone, else UTC
    weight_period: str | None = None  # weighted share window; default: shortest rule cap, else day
    # where `schedule` and `after_hours` come from: the rule's own, or the organisation's
    # defaults the loader resolved (the explanation names it); the schedule's name, if any
    schedule_origin: str = "rule"
    schedule_name: str = ""
    after_hours_origin: str = "rule"
    metrics_window: timedelta = DEFAULT_METRICS_WINDOW  # performance metrics' trailing window

    def __post_init__(self) -> None:
        _check(self.strategy in STRATEGIES, f"unknown strategy {self.strategy!r}")
        _check(self.after_hours in AFTER_HOURS, f"unknown after_hours {self.after_hours!r}")
        _check(
            self.claim_timeout is None or self.claim_timeout > timedelta(0),
            "claim_timeout must be positive",
        )
        _check(self.max_rounds is None or self.max_rounds >= 1, "max_rounds must be >= 1")
        _check(self.batch_size is None or self.batch_size >= 1, "batch_size must be >= 1")
        _check(
            self.pull_allotment is None or self.pull_allotment >= 0,
            "pull_allotment must not be negative",
        )
        _check(
            self.weight_period is None or self.weight_period in PERIODS,
            f"weight_period must be one of {PERIODS}",
        )
        if self.timezone is not None:
            ZoneInfo(self.timezone)
        _check(self.schedule_origin in ORIGINS, f"unknown schedule_origin {self.schedule_origin!r}")
        _check(
            self.after_hours_origin in ORIGINS,
            f"unknown after_hours_origin {self.after_hours_origin!r}",
        )
        _check(self.metrics_window > timedelta(0), "metrics_window must be positive")

    @property
    def cap_timezone(self) -> str:
        """Zone in which cap windows (calendar hour/day/week/month) are counted."""
        if self.timezone:
            return self.timezone
        if self.schedule is not None:
            return self.schedule.timezone
        return "UTC"

    @property
    def share_period(self) -> str:
        """Window over which the weighted strategy compares received leads."""
        if self.weight_period is not None:
            return self.weight_period
        items = self.caps.items()
        return items[0][0] if items else "day"


# --- decisions ----------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One agent considered: rank among the eligible (1 = first) or the rejection reason."""

    agent_id: int
    email: str
    member_id: int | None = None  # None for an agent outside the pool (default/direct)
    rank: int | None = None
    reason: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for the distribution history."""
        return {
            "agent_id": self.agent_id,
            "agent": self.email,
            "member_id": self.member_id,
            "rank": self.rank,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class RuleTrial:
    """One rule tried in priority order and whether (or why not) it matched."""

    rule_id: int
    rule_name: str
    matched: bool
    reason: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for the distribution history."""
        return {
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "matched": self.matched,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Result of rule matching: the winning rule (or None) and every rule tried."""

    rule: RuleSnapshot | None
    tried: tuple[RuleTrial, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one lead, and why."""

    outcome: Outcome
    reason_code: str
    reason: str  # human explanation for managers
    rule_id: int | None = None
    rule_name: str | None = None
    rules_tried: tuple[RuleTrial, ...] = ()
    chosen: tuple[Candidate, ...] = ()  # assignee (assign) or offered members (offer)
    candidates: tuple[Candidate, ...] = ()  # ranked eligible first, then the rejected
    expires_at: datetime | None = None  # offer expiry (UTC); None = no claim timer
    hold_until: datetime | None = None  # outcome hold: when the rule's schedule opens (UTC)
    round_no: int = 1
    offered_member_ids: frozenset[int] = frozenset()  # every member offered so far, this round too
    used_default_agent: bool = False
    default_candidate: Candidate | None = None  # the default agent's check, when it was tried

    @property
    def status(self) -> str:
        """The lead status this outcome leads to (DESIGN §7 vocabulary)."""
        return OUTCOME_STATUS[self.outcome]

    @property
    def assignee(self) -> Candidate | None:
        """The agent the lead is assigned to, for outcome ``assign``."""
        return self.chosen[0] if self.outcome == "assign" and self.chosen else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for ``DistributionAttempt`` and ``simulate --json``."""
        return {
            "outcome": self.outcome,
            "status": self.status,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "rule_id": self.rule_id,
            "rule": self.rule_name,
            "rules_tried": [t.to_dict() for t in self.rules_tried],
            "chosen": [c.to_dict() for c in self.chosen],
            "candidates": [c.to_dict() for c in self.candidates],
            "expires_at": _iso(self.expires_at),
            "hold_until": _iso(self.hold_until),
            "round": self.round_no,
            "offered_member_ids": sorted(self.offered_member_ids),
            "used_default_agent": self.used_default_agent,
            "default_candidate": (
                self.default_candidate.to_dict() if self.default_candidate else None
            ),
        }


@dataclass(frozen=True, slots=True)
class PullDecision:
    """Which waiting lead an agent's "Get lead" press receives, or why none."""

    lead_id: int | None
    rule_id: int | None
    member_id: int | None
    reason_code: str | None  # None when a lead was picked, else ``nothing_to_pull``
    reason: str
    skipped: tuple[tuple[int, str], ...] = ()  # (lead id, reason code) of older leads passed
