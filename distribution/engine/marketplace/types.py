"""The marketplace engine's vocabulary: enums, reason codes, the frozen snapshots the
services build, and the decision selection returns.

Cherry-picked outbound leads never appear in the counts handed to the engine
(`InboundLeadSnapshot.outbound_count`, `holder_max_share_counts`, `CapUsage`): they do not
count as distributed, toward share counts or toward caps. The company (and contract group)
that holds a cherry-picked lead is still never sold the same lead again: a buyer does not
pay twice for one lead. `InboundLeadSnapshot.with_outbound` derives all of these from the
lead's outbound leads so that the rule lives in one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from distribution.engine import schedule
from distribution.engine.marketplace.geo import bounding_box
from distribution.engine.marketplace.shares import holders_limit
from distribution.engine.types import Interval, ScheduleSnapshot

if TYPE_CHECKING:
    from distribution.engine.marketplace.explanation import Explanation

ZERO = Decimal(0)
# Sort keys: tuples of numbers whose last element is the contract id.
Key = tuple[float, ...]

# --------------------------------------------------------------------------- vocabulary


class SelectionMode(StrEnum):
    """How a contract selection rule orders (or optimises over) the eligible contracts."""

    QS = "qs"
    RANDOM = "random"
    ROUND_ROBIN = "round_robin"
    DISTANCE = "distance"
    FREE_TRIAL = "free_trial"
    TURNOVER = "turnover"
    LEAD_COUNT = "lead_count"


class Reason(StrEnum):
    """Reason codes of the explanation (per contract, per rule and for the decision)."""

    # A contract is not eligible for this lead.
    NO_CAMPAIGN = "no_campaign"
    INACTIVE = "inactive"
    PAUSED = "paused"
    OUT_OF_DATES = "out_of_dates"
    OTHER_CAMPAIGN = "other_campaign"
    ALREADY_RECEIVED = "already_received"
    SHARE_COUNT_EXCEEDED = "share_count_exceeded"
    CAP_REACHED = "cap_reached"
    BUDGET_REACHED = "budget_reached"
    LEAD_TOO_OLD = "lead_too_old"
    SCORE_TOO_LOW = "score_too_low"
    OUTSIDE_DELIVERY_HOURS = "outside_delivery_hours"
    OUT_OF_SERVICE_AREA = "out_of_service_area"
    # The contract has a service area and nobody knows where the lead is (no coordinates,
    # and neither the postal-code table nor the geocoder knows its place).
    NO_COORDINATES = "no_coordinates"
    # An eligible contract was not chosen.
    COMPANY_ALREADY_SELECTED = "company_already_selected"
    MULTIPLICATION_REACHED = "multiplication_reached"
    TAKE_REACHED = "take_reached"
    NOT_SELECTED_RANK = "not_selected_rank"
    RULE_SKIPPED_MIN_TURNOVER = "rule_skipped_min_turnover"
    TOTAL_MINIMUMS_NOT_REACHED = "total_minimums_not_reached"
    NO_RULE = "no_rule"
    # Rule outcomes.
    NO_CANDIDATES = "no_candidates"
    # Decision outcomes (besides the ones above).
    NO_SELECTION_RULES = "no_selection_rules"
    NO_ELIGIBLE_CONTRACTS = "no_eligible_contracts"
    NOTHING_SELECTED = "nothing_selected"
    MIN_CONTRACTS_NOT_REACHED = "min_contracts_not_reached"
    MIN_TURNOVER_NOT_REACHED = "min_turnover_not_reached"


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True)
class LocationPoint:
    """A company location (WGS84 degrees)."""

    lat: float
    lon: float


# A weekly interval of contract delivery hours is the engine's one weekly interval (the
# routing schedules' `Interval`: weekday, local start, exclusive end, past midnight when
# end <= start, 00:00 as end = end of day).
WeeklyInterval = Interval


@dataclass(frozen=True, slots=True)
class DeliverySchedule(ScheduleSnapshot):
    """The weekly hours in which a contract accepts leads, in its own time zone: a working
    schedule without holidays, decided by `engine.schedule.is_open` like agents' hours."""

    def is_open(self, now: datetime) -> bool:
        """True when `now` falls inside one of the weekly intervals."""
        return schedule.is_open(self, now)


@dataclass(frozen=True, slots=True, kw_only=True)
class CapLimits:
    """Caps per window: counts of outbound leads and budgets (sum of prices); None = no cap."""

    day: int | None = None
    week: int | None = None
    month: int | None = None
    day_budget: Decimal | None = None
    week_budget: Decimal | None = None
    month_budget: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CapUsage:
    """What a contract used in the current windows (cherry-picked outbound leads excluded)."""

    day: int = 0
    week: int = 0
    month: int = 0
    day_spent: Decimal = ZERO
    week_spent: Decimal = ZERO
    month_spent: Decimal = ZERO


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundRecord:
    """One existing outbound lead of an inbound lead, as the services load it."""

    contract_id: int
    company_id: int
    max_share_count: int
    cherry_picked: bool = False
    contract_group_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundLeadSnapshot:
    """An inbound lead as contract selection sees it.

    `outbound_count` and `holder_max_share_counts` describe the non-cherry-picked outbound
    leads only; `received_company_ids` / `received_group_ids` name every company and contract
    group that already holds the lead (a buyer is never sold a lead it already has).
    """

    id: int
    campaign: str | None
    created_at: datetime
    latitude: float | None = None
    longitude: float | None = None
    score: float | None = None
    received_company_ids: frozenset[int] = frozenset()
    received_group_ids: frozenset[int] = frozenset()
    outbound_count: int = 0
    holder_max_share_counts: tuple[int, ...] = ()

    @property
    def share_limit(self) -> int | None:
        """The smallest max_share_count among contracts holding the lead (None: none)."""
        return holders_limit(self.holder_max_share_counts)

    def with_outbound(self, records: Iterable[OutboundRecord]) -> InboundLeadSnapshot:
        """Return a copy whose holder fields are derived from the lead's outbound leads."""
        records = tuple(records)
        counted = [r for r in records if not r.cherry_picked]
        return replace(
            self,
            received_company_ids=frozenset(r.company_id for r in records),
            received_group_ids=frozenset(
                r.contract_group_id for r in records if r.contract_group_id is not None
            ),
            outbound_count=len(counted),
            holder_max_share_counts=tuple(r.max_share_count for r in counted),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractSnapshot:
    """A buyer contract with the usage figures of its current cap windows."""

    id: int
    company_id: int
    campaign: str
    price: Decimal
    max_share_count: int
    created_at: datetime
    name: str = ""
    quality_score: float = 0.0
    trial: bool = False
    active: bool = True
    paused: bool = False
    starts: date | None = None
    ends: date | None = None
    radius_km: float | None = None
    locations: tuple[LocationPoint, ...] = ()
    caps: CapLimits = CapLimits()
    used: CapUsage = CapUsage()
    last_outbound_at: datetime | None = None
    contract_group_id: int | None = None
    delivery_schedule: DeliverySchedule | None = None
    max_lead_age: timedelta | None = None
    min_lead_score: float | None = None
    # Sort keys, computed once per snapshot (a snapshot may serve many leads). Prices enter
    # as floats: exact in order for money amounts (well under 15 significant digits) and an
    # order of magnitude faster to compare than Decimal.
    qs_key: Key = field(init=False, repr=False, compare=False)
    rr_key: Key = field(init=False, repr=False, compare=False)
    trial_key: Key = field(init=False, repr=False, compare=False)
    turnover_key: Key = field(init=False, repr=False, compare=False)
    loc_rad: tuple[float, ...] = field(init=False, repr=False, compare=False)
    # Eligibility invariants: the cap/budget verdict (caps, usage and price are fixed for a
    # snapshot) and, with a radius, the bounding box (lat_min, lat_max, lon_min, lon_max) of
    # the service disc around each location: a lead outside every box is out of the area
    # without any trigonometry (geodesic distance is symmetric).
    cap_reason: Reason | None = field(init=False, repr=False, compare=False)
    area_boxes: tuple[tuple[float, float, float, float], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        require_aware(self.created_at)
        if self.last_outbound_at is not None:
            require_aware(self.last_outbound_at)
        price = float(self.price)
        tie = (-self.quality_score, -price, self.id)
        last = self.last_outbound_at if self.last_outbound_at is not None else self.created_at
        object.__setattr__(self, "qs_key", tie)
        object.__setattr__(self, "rr_key", (last.timestamp(), *tie))
        object.__setattr__(self, "trial_key", (0, 0.0, *tie) if self.trial else (1, -price, *tie))
        object.__setattr__(self, "turnover_key", (-price, -self.quality_score, self.id))
        # Locations in radians, flat (lat, lon, lat, lon, …): distances to many contracts
        # are computed at once with numpy.
        object.__setattr__(
            self,
            "loc_rad",
            tuple(v for p in self.locations for v in (math.radians(p.lat), math.radians(p.lon))),
        )
        object.__setattr__(self, "cap_reason", cap_reason(self))
        boxes: tuple[tuple[float, float, float, float], ...] = ()
        if self.radius_km is not None:
            boxes = tuple(
                (b.lat_min, b.lat_max, b.lon_min, b.lon_max)
                for b in (bounding_box(p.lat, p.lon, self.radius_km) for p in self.locations)
            )
        object.__setattr__(self, "area_boxes", boxes)

    def remaining_count(self) -> int | None:
        """Outbound leads still allowed by the count caps (None: no count cap)."""
        caps, used = self.caps, self.used
        rest = [
            cap - n
            for cap, n in ((caps.day, used.day), (caps.week, used.week), (caps.month, used.month))
            if cap is not None
        ]
        return max(0, min(rest)) if rest else None

    def remaining_budget(self) -> Decimal | None:
        """Amount still allowed by the budget caps (None: no budget cap)."""
        caps, used = self.caps, self.used
        rest = [
            cap - spent
            for cap, spent in (
                (caps.day_budget, used.day_spent),
                (caps.week_budget, used.week_spent),
                (caps.month_budget, used.month_spent),
            )
            if cap is not None
        ]
        return max(ZERO, min(rest)) if rest else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectionRuleSnapshot:
    """A contract selection rule: take at most `take` contracts ordered by `mode`."""

    position: int
    mode: SelectionMode
    take: int
    min_turnover: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSnapshot:
    """A campaign workflow's selection settings (None max_multiplication: no limit)."""

    max_multiplication: int | None
    rules: tuple[SelectionRuleSnapshot, ...] = ()
    min_contracts: int = 0
    min_turnover: Decimal | None = None


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True, slots=True)
class ChosenContract:
    """A contract that receives the lead, with the rule that chose it."""

    contract_id: int
    company_id: int
    price: Decimal
    rule_position: int | None
    mode: SelectionMode | None
    rank: int


class CandidateExplanation(NamedTuple):
    """One contract in the explanation.

    `reason` is None for a chosen contract; `rank` is the 1-based rank in the ordering of rule
    `rule_position` (the rule that chose it, else the last rule that ranked it); ineligible
    contracts have no rank. `distance_km` is the geodesic distance to the nearest location
    when it was computed. `note` is an advisory eligibility code (manual selection only).
    """

    contract_id: int
    company_id: int
    reason: Reason | None
    rank: int | None
    rule_position: int | None
    distance_km: float | None
    note: Reason | None = None


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one selection rule did (`chosen_ids` of a skipped rule: what it would have taken)."""

    position: int
    mode: SelectionMode
    take: int
    considered: int
    chosen_ids: tuple[int, ...]
    turnover: Decimal
    skipped: bool
    reason: Reason | None


@dataclass(frozen=True, slots=True)
class SelectionDecision:
    """The contracts chosen for one lead, and why every contract was or was not chosen."""

    lead_id: int
    chosen: tuple[ChosenContract, ...]
    turnover: Decimal
    reason: Reason | None
    rules: tuple[RuleOutcome, ...]
    outbound_count_before: int
    outbound_count_after: int
    explanation: Explanation = field(compare=False, repr=False)

    @property
    def distributed(self) -> bool:
        """True when at least one contract receives the lead."""
        return bool(self.chosen)

    @property
    def chosen_ids(self) -> tuple[int, ...]:
        """Ids of the chosen contracts in selection order."""
        return tuple(c.contract_id for c in self.chosen)

    @property
    def candidates(self) -> tuple[CandidateExplanation, ...]:
        """Every contract passed in, ranked, each with its reason code."""
        return self.explanation.lines()

    def explanation_for(self, contract_id: int) -> CandidateExplanation | None:
        """The explanation line of one contract (None if it was not passed in)."""
        return self.explanation.line_for(contract_id)


def cap_reason(c: ContractSnapshot) -> Reason | None:
    # CAP_REACHED / BUDGET_REACHED as the snapshot stands (computed once per snapshot).
    caps, used = c.caps, c.used
    if (
        (caps.day is not None and used.day >= caps.day)
        or (caps.week is not None and used.week >= caps.week)
        or (caps.month is not None and used.month >= caps.month)
    ):
        return Reason.CAP_REACHED
    if (
        (caps.day_budget is not None and used.day_spent + c.price > caps.day_budget)
        or (caps.week_budget is not None and used.week_spent + c.price > caps.week_budget)
        or (caps.month_budget is not None and used.month_spent + c.price > caps.month_budget)
    ):
        return Reason.BUDGET_REACHED
    return None


def require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes given to the engine must be timezone-aware")
