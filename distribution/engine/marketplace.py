"""Marketplace contract selection (seed 000): which buyer contracts receive an inbound lead.

Pure: no Django, no clock, no I/O. The services build the frozen snapshots below, pass
`now` (tz-aware, in the business time zone) and a seeded `random.Random`, and persist the
returned `SelectionDecision`, which carries the full explanation.

Cherry-picked outbound leads never appear in the counts handed to this module
(`InboundLeadSnapshot.outbound_count`, `holder_max_share_counts`, `CapUsage`): they do not
count as distributed, toward share counts or toward caps. The company (and contract group)
that holds a cherry-picked lead is still never sold the same lead again: a buyer does not
pay twice for one lead. `InboundLeadSnapshot.with_outbound` derives all of these from the
lead's outbound leads so that the rule lives in one place.
"""

from __future__ import annotations

import heapq
import math
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import chain
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
from geopy.distance import geodesic

__all__ = [
    "BoundingBox",
    "CandidateExplanation",
    "CapLimits",
    "CapUsage",
    "ChosenContract",
    "ContractSnapshot",
    "ContractTable",
    "DeliverySchedule",
    "Explanation",
    "InboundLeadSnapshot",
    "LocationPoint",
    "OutboundRecord",
    "Reason",
    "RuleOutcome",
    "SelectionDecision",
    "SelectionMode",
    "SelectionRuleSnapshot",
    "SubsetItem",
    "WeeklyInterval",
    "WorkflowSnapshot",
    "best_subset",
    "bounding_box",
    "check_manual_selection",
    "contract_eligibility",
    "distance_km",
    "eligible_contracts",
    "nearest_location_km",
    "remaining_room",
    "select_contracts",
]

ZERO = Decimal(0)
_INF = math.inf
_NO_LIMIT = sys.maxsize
# Sort keys: tuples of numbers whose last element is the contract id.
Key = tuple[float, ...]
# Heap entries of an ordering: a flat Key, or (distance, qs_key) in distance mode.
Entry = tuple[Any, ...]
# Great-circle distance on the mean-radius sphere vs the WGS84 geodesic: the ratio
# geodesic / great-circle lies in [0.99442, 1.00449] (the extreme radii of curvature of the
# ellipsoid). The margins below are wider still, so the cheap spherical value gives rigorous
# bounds and geopy's geodesic (about 0.2 ms a call) only runs where the bounds cannot decide.
_EARTH_MEAN_KM = 6371.0088
_LOW = 0.99
_HIGH = 1.01
# Absolute slack (km) for floating-point noise at tiny distances (geodesics are ~nm exact).
_SLACK_KM = 1e-6


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


# Reasons that block a manual distribution; the other eligibility reasons are advisory there.
_MANUAL_HARD = frozenset(
    {
        Reason.INACTIVE,
        Reason.ALREADY_RECEIVED,
        Reason.COMPANY_ALREADY_SELECTED,
        Reason.SHARE_COUNT_EXCEEDED,
        Reason.MULTIPLICATION_REACHED,
    }
)


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True)
class LocationPoint:
    """A company location (WGS84 degrees)."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class WeeklyInterval:
    """Open from `start` to `end` (exclusive) on `weekday` (0 = Monday); `end <= start`
    runs past midnight into the next day (so 00:00–00:00 is the whole day)."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class DeliverySchedule:
    """The weekly hours in which a contract accepts leads, in its own time zone."""

    timezone: str
    intervals: tuple[WeeklyInterval, ...]

    def is_open(self, now: datetime) -> bool:
        """True when `now` falls inside one of the weekly intervals."""
        local = now.astimezone(ZoneInfo(self.timezone))
        weekday = local.weekday()
        clock = local.time().replace(tzinfo=None)
        for iv in self.intervals:
            if iv.start < iv.end:
                if iv.weekday == weekday and iv.start <= clock < iv.end:
                    return True
            elif (iv.weekday == weekday and clock >= iv.start) or (
                (iv.weekday + 1) % 7 == weekday and clock < iv.end
            ):
                return True
        return False


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
        return min(self.holder_max_share_counts) if self.holder_max_share_counts else None

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
        _require_aware(self.created_at)
        if self.last_outbound_at is not None:
            _require_aware(self.last_outbound_at)
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
        object.__setattr__(self, "cap_reason", _cap_reason(self))
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


class _Ranked(NamedTuple):
    # `indices` ranked start, start + 1, …, each with its own reason.
    indices: Sequence[int]
    reasons: Sequence[Reason | None]
    start: int
    position: int | None


class _RankedKeys(NamedTuple):
    # A tail still in heap form: sorted (keys end with the contract id) only when explained.
    keys: Sequence[Entry]
    start: int
    position: int
    reason: Reason


class _RankedTail(NamedTuple):
    # A tail already in order (indices of a presorted order): ranked start, start + 1, …
    indices: Sequence[int]
    start: int
    position: int
    reason: Reason


class _Relabel(NamedTuple):
    # A new reason for `indices`, ranks unchanged.
    indices: Sequence[int]
    reason: Reason


_Event = _Ranked | _RankedKeys | _RankedTail | _Relabel

# Reasons as small integers (0: chosen / eligible) for the vectorised paths.
_REASONS: tuple[Reason | None, ...] = (None, *Reason)
_CODE = {r: i for i, r in enumerate(_REASONS)}
_REASON_ARRAY = np.array(_REASONS, dtype=object)
_UNRANKED = np.iinfo(np.int64).max


class Explanation:
    """Why each contract was or was not chosen, materialised on first use.

    Selection records what each rule did as a short log (a rule may rank 10,000 contracts
    while choosing 3); the log is replayed once into per-contract arrays (reason code, rank,
    rule), from which `head(n)` and `reason_counts()` read without building a line per
    contract. The object is immutable from outside. In distance mode the contracts a rule
    never reached are ranked by a proven lower bound of their distance (their exact
    distance could not have changed the choice).
    """

    __slots__ = (
        "_base",
        "_by_id",
        "_chosen",
        "_contracts",
        "_distances",
        "_eligible",
        "_ids",
        "_ineligible",
        "_lines",
        "_log",
        "_notes",
        "_replayed",
    )

    def __init__(
        self,
        *,
        contracts: tuple[ContractSnapshot, ...],
        base: Sequence[Reason | None] | np.ndarray,
        log: tuple[_Event, ...],
        chosen: tuple[int, ...],
        eligible: Sequence[int],
        ineligible: Sequence[int],
        distances: dict[int, float],
        notes: dict[int, Reason],
        ids: np.ndarray | None = None,
    ) -> None:
        self._contracts = contracts
        self._base = base if isinstance(base, np.ndarray) else _codes_of(base)
        self._log = log
        self._chosen = chosen
        self._eligible = eligible
        self._ineligible = ineligible
        self._distances = distances
        self._notes = notes
        self._ids = ids
        self._lines: tuple[CandidateExplanation, ...] | None = None
        self._by_id: dict[int, CandidateExplanation] | None = None
        self._replayed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _replay(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final reason code, rank and rule position of every contract (log replayed once;
        unranked: _UNRANKED)."""
        if self._replayed is not None:
            return self._replayed
        contracts = self._contracts
        n = len(contracts)
        reason = self._base.astype(np.int16, copy=True)
        rank = np.full(n, _UNRANKED, dtype=np.int64)
        rule = np.full(n, _UNRANKED, dtype=np.int64)
        index_of: dict[int, int] | None = None
        for event in self._log:
            if isinstance(event, _Ranked):
                idx = _index_array(event.indices)
                if idx.size:
                    rank[idx] = np.arange(event.start, event.start + idx.size)
                    rule[idx] = _UNRANKED if event.position is None else event.position
                    reason[idx] = np.fromiter(
                        (_CODE[r] for r in event.reasons), dtype=np.int16, count=idx.size
                    )
            elif isinstance(event, _RankedKeys):
                if index_of is None:
                    index_of = {contracts[i].id: i for i in self._eligible}
                ordered = [index_of[_entry_id(key)] for key in sorted(event.keys)]
                idx = _index_array(ordered)
                if idx.size:
                    rank[idx] = np.arange(event.start, event.start + idx.size)
                    rule[idx] = event.position
                    reason[idx] = _CODE[event.reason]
            elif isinstance(event, _RankedTail):
                idx = _index_array(event.indices)
                if idx.size:
                    rank[idx] = np.arange(event.start, event.start + idx.size)
                    rule[idx] = event.position
                    reason[idx] = _CODE[event.reason]
            else:
                idx = _index_array(event.indices)
                if idx.size:
                    reason[idx] = _CODE[event.reason]
        self._replayed = (reason, rank, rule)
        return self._replayed

    def _line(self, idx: int) -> CandidateExplanation:
        reason, rank, rule = self._replay()
        c = self._contracts[idx]
        r, k = int(rank[idx]), int(rule[idx])
        return CandidateExplanation(
            c.id,
            c.company_id,
            _REASONS[reason[idx]],
            None if r == _UNRANKED else r,
            None if k == _UNRANKED else k,
            self._distances.get(c.id),
            self._notes.get(idx),
        )

    def _rest(self) -> np.ndarray:
        """Eligible contracts not chosen, by (rule, rank, id)."""
        _, rank, rule = self._replay()
        eligible = _index_array(self._eligible)
        if self._chosen:
            eligible = eligible[~np.isin(eligible, np.asarray(self._chosen, dtype=np.int64))]
        if not eligible.size:
            return eligible
        ids = self._ids
        if ids is None:
            ids = np.fromiter((self._contracts[i].id for i in eligible), np.int64, eligible.size)
        else:
            ids = ids[eligible]
        return eligible[np.lexsort((ids, rank[eligible], rule[eligible]))]

    def head(self, n: int) -> list[CandidateExplanation]:
        """The first N lines of `lines()`, without materialising the others."""
        if self._lines is not None:
            return list(self._lines[:n])
        out = [self._line(i) for i in self._chosen[:n]]
        if len(out) < n:
            out.extend(self._line(int(i)) for i in self._rest()[: n - len(out)])
        if len(out) < n:
            out.extend(self._line(i) for i in self._ineligible[: n - len(out)])
        return out

    def lines(self) -> tuple[CandidateExplanation, ...]:
        """Chosen contracts in selection order, other eligible ones by (rule, rank), then
        the ineligible ones by id."""
        if self._lines is None:
            out = [self._line(i) for i in self._chosen]
            out.extend(self._line(i) for i in self._rest().tolist())
            out.extend(self._line(i) for i in self._ineligible)
            self._lines = tuple(out)
        return self._lines

    def line_for(self, contract_id: int) -> CandidateExplanation | None:
        """The explanation line of one contract (None if it was not passed in)."""
        if self._by_id is None:
            self._by_id = {line.contract_id: line for line in self.lines()}
        return self._by_id.get(contract_id)

    def reason_counts(self) -> dict[str, int]:
        """How many contracts ended with each reason code ("chosen" for the chosen ones)."""
        reason, _, _ = self._replay()
        counts: list[int] = (
            np.bincount(reason, minlength=len(_REASONS)).tolist() if reason.size else []
        )
        return {
            "chosen" if code == 0 else str(_REASONS[code]): int(k)
            for code, k in enumerate(counts)
            if k
        }


def _index_array(indices: Sequence[int] | np.ndarray) -> np.ndarray:
    if isinstance(indices, np.ndarray):
        return indices.astype(np.int64, copy=False)
    return np.fromiter(indices, dtype=np.int64, count=len(indices))


def _codes_of(reasons: Sequence[Reason | None]) -> np.ndarray:
    return np.fromiter((_CODE[r] for r in reasons), dtype=np.int16, count=len(reasons))


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


# --------------------------------------------------------------------------- geography


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A lat/lon box that contains every point within a distance of its centre."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point lies in the box (edges included)."""
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


def bounding_box(lat: float, lon: float, km: float) -> BoundingBox:
    """A conservative box around (lat, lon) holding every point within `km` (geodesic).

    1. Inflate the radius by the sphere/ellipsoid margin so the spherical cap contains the
       geodesic disc, and turn it into an angle on the mean-radius sphere.
    2. Latitude extent: centre ± that angle (clamped to ±90).
    3. Longitude extent: the exact extent of a spherical cap, asin(sin r / cos φ); a cap that
       reaches a pole or crosses the antimeridian gets the full -180..180 range, so the box
       is always one plain SQL range per axis.
    """
    r = max(0.0, km) / (_LOW * _EARTH_MEAN_KM)
    dlat = math.degrees(r)
    lat_min, lat_max = lat - dlat, lat + dlat
    if lat_min <= -90.0 or lat_max >= 90.0:
        return BoundingBox(max(lat_min, -90.0), min(lat_max, 90.0), -180.0, 180.0)
    ratio = math.sin(r) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return BoundingBox(lat_min, lat_max, -180.0, 180.0)
    dlon = math.degrees(math.asin(ratio))
    lon_min, lon_max = lon - dlon, lon + dlon
    if lon_min < -180.0 or lon_max > 180.0:
        return BoundingBox(lat_min, lat_max, -180.0, 180.0)
    return BoundingBox(lat_min, lat_max, lon_min, lon_max)


def _lower(spherical_km: float) -> float:
    # A proven lower bound of the geodesic distance from the great-circle one.
    bound = spherical_km * _LOW - _SLACK_KM
    return bound if bound > 0.0 else 0.0


def distance_km(lat: float, lon: float, point: LocationPoint) -> float:
    """Geodesic (WGS84) distance in km between a coordinate and a location."""
    return float(geodesic((lat, lon), (point.lat, point.lon)).km)


def _great_circle_km(lat1: float, cos1: float, lon1: float, lat2: float, lon2: float) -> float:
    # Haversine with the lead's latitude cosine precomputed; inputs in radians.
    s_lat = math.sin((lat2 - lat1) * 0.5)
    s_lon = math.sin((lon2 - lon1) * 0.5)
    h = s_lat * s_lat + cos1 * math.cos(lat2) * s_lon * s_lon
    return 2.0 * _EARTH_MEAN_KM * math.asin(math.sqrt(h) if h < 1.0 else 1.0)


def nearest_location_km(contract: ContractSnapshot, lat: float, lon: float) -> float | None:
    """Geodesic distance from a point to the nearest location of the contract's company."""
    if not contract.locations:
        return None
    return min(distance_km(lat, lon, loc) for loc in contract.locations)


# --------------------------------------------------------------------------- eligibility


class _LeadContext:
    """Per-lead values computed once and shared by every contract check (and caches)."""

    __slots__ = (
        "age",
        "approx",
        "cos_lat",
        "count",
        "exact",
        "has_point",
        "lat",
        "lat_r",
        "lead",
        "lon",
        "lon_r",
        "now",
        "open_cache",
        "share_limit",
        "today",
    )

    def __init__(self, lead: InboundLeadSnapshot, now: datetime) -> None:
        _require_aware(now)
        self.lead = lead
        self.now = now
        self.today = now.date()
        # The lead's age, once (None for a naive created_at: the check then fails as before).
        created = lead.created_at
        self.age: timedelta | None = now - created if created.utcoffset() is not None else None
        self.count = lead.outbound_count
        self.share_limit = lead.share_limit
        self.has_point = lead.latitude is not None and lead.longitude is not None
        self.lat = lead.latitude if lead.latitude is not None else 0.0
        self.lon = lead.longitude if lead.longitude is not None else 0.0
        self.lat_r = math.radians(self.lat)
        self.lon_r = math.radians(self.lon)
        self.cos_lat = math.cos(self.lat_r)
        self.approx: dict[int, list[tuple[float, LocationPoint]]] = {}
        self.exact: dict[int, float] = {}
        self.open_cache: dict[int, bool] = {}

    def spherical(self, contract: ContractSnapshot) -> list[tuple[float, LocationPoint]]:
        """Great-circle km to each location, nearest first (cached per contract)."""
        found = self.approx.get(contract.id)
        if found is None:
            lat, cos_lat, lon = self.lat_r, self.cos_lat, self.lon_r
            rad = contract.loc_rad
            found = [
                (_great_circle_km(lat, cos_lat, lon, rad[2 * k], rad[2 * k + 1]), p)
                for k, p in enumerate(contract.locations)
            ]
            if len(found) > 1:
                found.sort(key=lambda pair: pair[0])
            self.approx[contract.id] = found
        return found

    def lower_bound(self, contract: ContractSnapshot) -> float:
        """A lower bound of the geodesic distance to the nearest location (inf: unknown)."""
        if not self.has_point or not contract.locations:
            return _INF
        return _lower(self.spherical(contract)[0][0])

    def nearest(self, contract: ContractSnapshot) -> float:
        """Exact geodesic km to the nearest location (inf without coordinates/locations)."""
        found = self.exact.get(contract.id)
        if found is not None:
            return found
        best = _INF
        if self.has_point:
            for approx, loc in self.spherical(contract):
                if _lower(approx) >= best:
                    break  # every further location is provably farther
                best = min(best, distance_km(self.lat, self.lon, loc))
        self.exact[contract.id] = best
        return best

    def within(self, contract: ContractSnapshot, radius: float) -> bool:
        """True when some location lies within `radius` km (geodesic, decided exactly)."""
        if not self.has_point:
            return False
        for approx, loc in self.spherical(contract):
            if _lower(approx) > radius:
                return False  # sorted: the rest are farther still
            if (
                approx * _HIGH + _SLACK_KM <= radius
                or distance_km(self.lat, self.lon, loc) <= radius
            ):
                return True
        return False

    def is_open(self, schedule: DeliverySchedule) -> bool:
        """Delivery-schedule check, cached per schedule object."""
        key = id(schedule)
        found = self.open_cache.get(key)
        if found is None:
            found = schedule.is_open(self.now)
            self.open_cache[key] = found
        return found


def _cap_reason(c: ContractSnapshot) -> Reason | None:
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


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes given to the engine must be timezone-aware")


def _eligibility(c: ContractSnapshot, ctx: _LeadContext) -> Reason | None:
    # Cheap checks first; the geographic one last because it may need a geodesic.
    lead = ctx.lead
    if lead.campaign is None:
        return Reason.NO_CAMPAIGN
    if not c.active:
        return Reason.INACTIVE
    if c.paused:
        return Reason.PAUSED
    if (c.starts is not None and ctx.today < c.starts) or (
        c.ends is not None and ctx.today > c.ends
    ):
        return Reason.OUT_OF_DATES
    if c.campaign != lead.campaign:
        return Reason.OTHER_CAMPAIGN
    if c.company_id in lead.received_company_ids or (
        c.contract_group_id is not None and c.contract_group_id in lead.received_group_ids
    ):
        return Reason.ALREADY_RECEIVED
    after = ctx.count + 1
    if after > c.max_share_count or (ctx.share_limit is not None and after > ctx.share_limit):
        return Reason.SHARE_COUNT_EXCEEDED
    if c.cap_reason is not None:
        return c.cap_reason
    if (
        c.max_lead_age is not None
        and (ctx.age if ctx.age is not None else ctx.now - lead.created_at) > c.max_lead_age
    ):
        return Reason.LEAD_TOO_OLD
    if c.min_lead_score is not None and (lead.score is None or lead.score < c.min_lead_score):
        return Reason.SCORE_TOO_LOW
    if c.delivery_schedule is not None and not ctx.is_open(c.delivery_schedule):
        return Reason.OUTSIDE_DELIVERY_HOURS
    if c.radius_km is not None:
        if not ctx.has_point:
            return Reason.OUT_OF_SERVICE_AREA
        lat, lon = ctx.lat, ctx.lon
        for lat_min, lat_max, lon_min, lon_max in c.area_boxes:
            if lat_min <= lat <= lat_max and lon_min <= lon <= lon_max:
                break
        else:  # outside every location's box: farther than the radius from each
            return Reason.OUT_OF_SERVICE_AREA
        if not ctx.within(c, c.radius_km):
            return Reason.OUT_OF_SERVICE_AREA
    return None


def contract_eligibility(
    contract: ContractSnapshot, lead: InboundLeadSnapshot, now: datetime
) -> Reason | None:
    """Why the contract may not receive the lead now, or None when it may."""
    return _eligibility(contract, _LeadContext(lead, now))


def eligible_contracts(
    lead: InboundLeadSnapshot, contracts: Sequence[ContractSnapshot], now: datetime
) -> tuple[ContractSnapshot, ...]:
    """The contracts that may receive the lead now, in id order."""
    screened = _screen(lead, contracts, now)
    return tuple(screened.contracts[i] for i in screened.eligible)


# --------------------------------------------------------------------------- compiled contracts


_MAX_I64 = int(np.iinfo(np.int64).max)
_MIN_I64 = int(np.iinfo(np.int64).min)
_MICROSECOND = timedelta(microseconds=1)
# The static sort keys a table keeps presorted (their keys never change for a snapshot's
# price, QS and trial flag; round robin and distance depend on sales and the lead).
_STATIC_ORDERS: dict[str, Callable[[ContractSnapshot], Key]] = {
    "qs": lambda c: c.qs_key,
    "trial": lambda c: c.trial_key,
    "turnover": lambda c: c.turnover_key,
}


class ContractTable:
    """Contracts compiled once to decide eligibility for many leads at a time.

    The scalar eligibility fields become numpy columns (id order), the service-area discs
    one row per location with its bounding box, the delivery schedules a short list of
    distinct ones, and the QS / free-trial / turnover orders are sorted once. Screening a
    lead is then a handful of vectorised comparisons whatever the number of contracts;
    geopy's geodesic still decides the few locations the spherical bounds cannot.
    `select_contracts` over a table returns the same decision as over the plain sequence
    (property-tested). `update` swaps one contract's snapshot (usage moved after a sale)
    without recompiling the rest.
    """

    # One numpy column per scalar eligibility field (see `_COLUMNS` and `_scalars`).
    active: np.ndarray
    paused: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    campaign: np.ndarray
    group: np.ndarray
    share: np.ndarray
    cap: np.ndarray
    max_age: np.ndarray
    min_score: np.ndarray
    schedule: np.ndarray
    radius: np.ndarray

    def __init__(self, contracts: Iterable[ContractSnapshot]) -> None:
        rows = sorted(contracts, key=lambda c: c.id)
        self.index_of: dict[int, int] = {}
        for i, c in enumerate(rows):
            if self.index_of.setdefault(c.id, i) != i:
                raise ValueError(f"contract id {c.id} passed twice")
        self._rows = rows
        self._campaigns: dict[str, int] = {}
        self._schedules: dict[DeliverySchedule, int] = {}
        self.ids = np.fromiter((c.id for c in rows), np.int64, len(rows))
        self.company = np.fromiter((c.company_id for c in rows), np.int64, len(rows))
        columns = [self._scalars(c) for c in rows]
        for k, (name, dtype) in enumerate(_COLUMNS):
            setattr(self, name, np.array([col[k] for col in columns], dtype=dtype))
        self.schedules = list(self._schedules)
        self._compile_areas()
        self._sort()

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def contracts(self) -> tuple[ContractSnapshot, ...]:
        """The snapshots, in id order."""
        return tuple(self._rows)

    def get(self, contract_id: int) -> ContractSnapshot | None:
        """The snapshot of one contract (None when not in the table)."""
        idx = self.index_of.get(contract_id)
        return None if idx is None else self._rows[idx]

    def _scalars(self, c: ContractSnapshot) -> tuple[Any, ...]:
        schedule = -1
        if c.delivery_schedule is not None:
            schedule = self._schedules.setdefault(c.delivery_schedule, len(self._schedules))
        return (
            c.active,
            c.paused,
            c.starts.toordinal() if c.starts is not None else _MIN_I64,
            c.ends.toordinal() if c.ends is not None else _MAX_I64,
            self._campaigns.setdefault(c.campaign, len(self._campaigns)),
            c.contract_group_id if c.contract_group_id is not None else -1,
            c.max_share_count,
            _CODE[c.cap_reason],
            min(c.max_lead_age // _MICROSECOND, _MAX_I64)
            if c.max_lead_age is not None
            else _MAX_I64,
            c.min_lead_score if c.min_lead_score is not None else math.nan,
            schedule,
            c.radius_km if c.radius_km is not None else math.nan,
        )

    def _compile_areas(self) -> None:
        # One row per location of a contract with a radius: owner, radians, disc box.
        owner: list[int] = []
        points: list[LocationPoint] = []
        boxes: list[tuple[float, float, float, float]] = []
        for i, c in enumerate(self._rows):
            if c.radius_km is None:
                continue
            for point, box in zip(c.locations, c.area_boxes, strict=True):
                owner.append(i)
                points.append(point)
                boxes.append(box)
        self.loc_owner = np.array(owner, dtype=np.int64)
        self.loc_points = points
        self.loc_box = np.array(boxes, dtype=np.float64).reshape(len(boxes), 4)
        self.loc_rad = np.radians(
            np.array([(p.lat, p.lon) for p in points], dtype=np.float64).reshape(len(points), 2)
        )
        self.loc_radius = self.radius[self.loc_owner] if owner else np.zeros(0)

    def _sort(self) -> None:
        rows = self._rows
        self.orders = {
            name: np.array(sorted(range(len(rows)), key=lambda i: key(rows[i])), dtype=np.int64)
            for name, key in _STATIC_ORDERS.items()
        }

    def update(self, snapshot: ContractSnapshot) -> None:
        """Swap in a new snapshot of a contract already in the table (same id)."""
        idx = self.index_of[snapshot.id]
        old = self._rows[idx]
        self._rows[idx] = snapshot
        if snapshot.delivery_schedule is not None and snapshot.delivery_schedule not in (
            self._schedules
        ):
            self._schedules[snapshot.delivery_schedule] = len(self._schedules)
            self.schedules = list(self._schedules)
        for (name, _), value in zip(_COLUMNS, self._scalars(snapshot), strict=True):
            getattr(self, name)[idx] = value
        self.company[idx] = snapshot.company_id
        if (old.locations, old.radius_km) != (snapshot.locations, snapshot.radius_km):
            self._compile_areas()
        if any(key(old) != key(snapshot) for key in _STATIC_ORDERS.values()):
            self._sort()

    def screen(self, lead: InboundLeadSnapshot, now: datetime) -> _Screened:
        """Eligibility of every contract for LEAD, vectorised; the same reason codes as
        `_eligibility` contract by contract (first failing check wins)."""
        ctx = _LeadContext(lead, now)
        if ctx.age is None:  # a naive created_at: the contract-by-contract path says why
            return _screen(lead, self._rows, now)
        n = len(self._rows)
        if lead.campaign is None:
            codes = np.full(n, _CODE[Reason.NO_CAMPAIGN], dtype=np.int16)
        else:
            today = ctx.today.toordinal()
            after = ctx.count + 1
            checks: list[tuple[Any, Reason]] = [
                (~self.active, Reason.INACTIVE),
                (self.paused, Reason.PAUSED),
                ((self.starts > today) | (self.ends < today), Reason.OUT_OF_DATES),
                (self.campaign != self._campaigns.get(lead.campaign, -2), Reason.OTHER_CAMPAIGN),
            ]
            if lead.received_company_ids or lead.received_group_ids:
                received = np.isin(self.company, list(lead.received_company_ids))
                if lead.received_group_ids:
                    received |= (self.group >= 0) & np.isin(
                        self.group, list(lead.received_group_ids)
                    )
                checks.append((received, Reason.ALREADY_RECEIVED))
            if ctx.share_limit is not None and after > ctx.share_limit:
                checks.append((np.ones(n, dtype=bool), Reason.SHARE_COUNT_EXCEEDED))
            else:
                checks.append((self.share < after, Reason.SHARE_COUNT_EXCEEDED))
            checks.append((self.cap == _CODE[Reason.CAP_REACHED], Reason.CAP_REACHED))
            checks.append((self.cap == _CODE[Reason.BUDGET_REACHED], Reason.BUDGET_REACHED))
            checks.append((self.max_age < ctx.age // _MICROSECOND, Reason.LEAD_TOO_OLD))
            has_min = ~np.isnan(self.min_score)
            if lead.score is None:
                checks.append((has_min, Reason.SCORE_TOO_LOW))
            else:
                checks.append((has_min & (lead.score < self.min_score), Reason.SCORE_TOO_LOW))
            if self.schedules:
                open_now = np.array([ctx.is_open(s) for s in self.schedules] + [True])
                checks.append((~open_now[self.schedule], Reason.OUTSIDE_DELIVERY_HOURS))
            codes = np.select(
                [np.broadcast_to(cond, (n,)) for cond, _ in checks],
                [_CODE[why] for _, why in checks],
                default=0,
            ).astype(np.int16)
            pending = (codes == 0) & ~np.isnan(self.radius)
            if pending.any():
                inside = self._within(ctx, pending) if ctx.has_point else np.zeros(n, bool)
                codes[pending & ~inside] = _CODE[Reason.OUT_OF_SERVICE_AREA]
        mask = codes == 0
        return _Screened(
            ctx,
            tuple(self._rows),
            codes,
            np.flatnonzero(mask).tolist(),
            np.flatnonzero(~mask).tolist(),
            self.index_of,
            self,
            mask,
        )

    def _within(self, ctx: _LeadContext, pending: np.ndarray) -> np.ndarray:
        """Per contract: some location lies within its radius of the lead (exactly).

        1. Locations of PENDING contracts whose disc box holds the lead.
        2. Great-circle km to those; a proven upper bound within the radius decides yes, a
           proven lower bound beyond it decides no, geopy's geodesic decides the rest.
        """
        lat, lon = ctx.lat, ctx.lon
        box = self.loc_box
        candidate = (
            pending[self.loc_owner]
            & (box[:, 0] <= lat)
            & (lat <= box[:, 1])
            & (box[:, 2] <= lon)
            & (lon <= box[:, 3])
        )
        rows = np.flatnonzero(candidate)
        inside = np.zeros(len(self._rows), dtype=bool)
        if not rows.size:
            return inside
        rad = self.loc_rad[rows]
        h = (
            np.sin((rad[:, 0] - ctx.lat_r) * 0.5) ** 2
            + ctx.cos_lat * np.cos(rad[:, 0]) * np.sin((rad[:, 1] - ctx.lon_r) * 0.5) ** 2
        )
        theta = 2.0 * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
        low, high = _curvature_bounds(abs(ctx.lat_r), np.abs(rad[:, 0]), theta)
        approx = _EARTH_MEAN_KM * theta
        radius = self.loc_radius[rows]
        hit = approx * high + _SLACK_KM <= radius
        unsure = ~hit & (np.maximum(approx * low - _SLACK_KM, 0.0) <= radius)
        for k in np.flatnonzero(unsure).tolist():
            if distance_km(lat, lon, self.loc_points[rows[k]]) <= radius[k]:
                hit[k] = True
        inside[self.loc_owner[rows[hit]]] = True
        return inside


# WGS84, in km: the meridian radius of curvature M(φ) and the prime-vertical one N(φ)
# both grow from the equator to the poles, and M ≤ N.
_WGS84_A = 6378.137
_WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
_ROUNDING = 1e-9  # relative floating-point allowance on top of the proven ratios


def _curvature_bounds(
    abs_lat: float, abs_lats: np.ndarray, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, factors that turn the great-circle km (mean-radius sphere) into proven
    lower and upper bounds of the WGS84 geodesic, much tighter than the global ratios.

    The ellipsoid's line element is sqrt(M² dφ² + N² cos²φ dλ²), so along any path it lies
    between min(M, N) and max(M, N) times the unit sphere's. The geodesic is therefore at
    least M(φ_lo)·θ (its image on the sphere is no shorter than the central angle θ) and at
    most N(φ_hi)·θ (the great-circle path drawn on the ellipsoid is no shorter than it).
    Both paths stay within 1.02·θ of each end's latitude (a path of length d moves at most
    d / M_min in latitude, and d ≤ 1.0045 · R·θ), which bounds φ_lo and φ_hi.
    """
    reach = 1.02 * theta
    lo = np.clip(np.minimum(abs_lat, abs_lats) - reach, 0.0, math.pi / 2)
    hi = np.clip(np.maximum(abs_lat, abs_lats) + reach, 0.0, math.pi / 2)
    s_lo = 1.0 - _WGS84_E2 * np.sin(lo) ** 2
    s_hi = 1.0 - _WGS84_E2 * np.sin(hi) ** 2
    meridian = _WGS84_A * (1.0 - _WGS84_E2) / (s_lo * np.sqrt(s_lo))
    vertical = _WGS84_A / np.sqrt(s_hi)
    return (
        meridian / _EARTH_MEAN_KM * (1.0 - _ROUNDING),
        vertical / _EARTH_MEAN_KM * (1.0 + _ROUNDING),
    )


# The columns of a ContractTable, in the order `ContractTable._scalars` returns them.
_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("active", bool),
    ("paused", bool),
    ("starts", np.int64),
    ("ends", np.int64),
    ("campaign", np.int64),
    ("group", np.int64),
    ("share", np.int64),
    ("cap", np.int16),
    ("max_age", np.int64),
    ("min_score", np.float64),
    ("schedule", np.int64),
    ("radius", np.float64),
)


def remaining_room(lead: InboundLeadSnapshot, workflow: WorkflowSnapshot) -> int:
    """How many more outbound leads the lead may get (multiplication and share counts)."""
    return max(0, _limit(lead, workflow) - lead.outbound_count)


def _limit(lead: InboundLeadSnapshot, workflow: WorkflowSnapshot) -> int:
    limit = _NO_LIMIT if workflow.max_multiplication is None else workflow.max_multiplication
    share = lead.share_limit
    return limit if share is None else min(limit, share)


# --------------------------------------------------------------------------- exact subsets


@dataclass(frozen=True, slots=True)
class SubsetItem:
    """An option for `best_subset`: lexicographic weight (larger is better) and conflicts.

    `tiebreak` orders options of equal weight (smaller first) so results are deterministic.
    """

    ref: int
    weight: tuple[Decimal, ...]
    max_share_count: int
    company_id: int
    group_id: int | None
    tiebreak: int


def _tsum(items: Sequence[SubsetItem], width: int) -> tuple[Decimal, ...]:
    total = [ZERO] * width
    for it in items:
        for pos, value in enumerate(it.weight):
            total[pos] += value
    return tuple(total)


def best_subset(
    items: Sequence[SubsetItem],
    *,
    outbound_count: int,
    limit: int,
    take: int,
    presorted: bool = False,
    min_size: int = 1,
) -> list[SubsetItem]:
    """The subset of maximal total weight that may join a lead; exact, not greedy.

    Feasible: at most `take` items, one per company and per group, and with k items chosen
    the lead ends with n = outbound_count + k outbound leads, which must not exceed `limit`
    (multiplication and the share counts of existing holders) nor any chosen item's
    max_share_count.

    1. Rank the items by weight, then tiebreak (a strict total order); `presorted` says the
       caller already passes them in that order.
    2. For every final size k (1 … min(take, limit - outbound_count)): the feasible k-sets
       are exactly the k-sets of E_k = {items with max_share_count ≥ outbound_count + k}
       with no company or group twice; take the best one (`_best_of_size`). E_k shrinks as
       k grows, so once no k-set exists no larger one does either.
    3. The answer is the best of these (ties: the smaller set). Every feasible subset of
       size k lies in E_k, so the maximum over k is the global optimum. Sizes below
       `min_size` are not considered (the best set may then weigh less than nothing).
    """
    if take <= 0 or outbound_count >= limit or not items:
        return []
    width = len(items[0].weight)
    ranked = (
        list(items)
        if presorted
        else sorted(items, key=lambda it: (tuple(-w for w in it.weight), it.tiebreak))
    )
    best: list[SubsetItem] = []
    best_value: tuple[Decimal, ...] | None = None
    for k in range(max(1, min_size), min(take, limit - outbound_count, len(ranked)) + 1):
        need = outbound_count + k
        pool = [it for it in ranked if it.max_share_count >= need]
        found = _best_of_size(pool, k)
        if found is None:
            break
        value = _tsum(found, width)
        if best_value is None or value > best_value:
            best, best_value = found, value
    return best


def _groups_vacuous(items: list[SubsetItem]) -> bool:
    # The group rule adds nothing when each group's items share one company.
    company_of: dict[int, int] = {}
    for it in items:
        if (
            it.group_id is not None
            and company_of.setdefault(it.group_id, it.company_id) != it.company_id
        ):
            return False
    return True


def _best_of_size(ranked: list[SubsetItem], k: int) -> list[SubsetItem] | None:
    """The best k ranked items with no company and no group twice (None: impossible).

    1. Without groups (or when each group's items share one company) this is a partition
       matroid: the first item of each company in rank order, the first k of those.
    2. With groups it is a max-weight k-matching between companies and groups. Prune first,
       keeping some optimum (take S optimal with the smallest sum of ranks; an item of S
       outside the kept set could be swapped for a kept item of no lower rank that conflicts
       with nothing in S, contradicting the choice of S):
       a. of items sharing company and group keep the first;
       b. keep an item only if it is among the first k of its company and of its group
          (S minus one item uses k - 1 groups/companies, so one of k better ones is free);
       c. keep the first 2k(k-1)+1 (S minus one item conflicts with at most 2k(k-1) kept
          items, so one of that many better ones is free).
    3. Solve the small remaining graph exactly by successive shortest paths (min-cost flow;
       each augmentation yields the optimum for one more unit of flow).
    """
    if _groups_vacuous(ranked):
        seen: set[int] = set()
        out: list[SubsetItem] = []
        for it in ranked:
            if it.company_id not in seen:
                seen.add(it.company_id)
                out.append(it)
                if len(out) == k:
                    return out
        return None
    pairs: set[tuple[int, int | None]] = set()
    per_company: dict[int, int] = {}
    per_group: dict[int, int] = {}
    kept: list[SubsetItem] = []
    limit = 2 * k * (k - 1) + 1
    for it in ranked:
        pair = (it.company_id, it.group_id)
        if pair in pairs:
            continue
        pairs.add(pair)
        company_rank = per_company[it.company_id] = per_company.get(it.company_id, 0) + 1
        group_rank = 0
        if it.group_id is not None:
            group_rank = per_group[it.group_id] = per_group.get(it.group_id, 0) + 1
        if company_rank <= k and group_rank <= k:
            kept.append(it)
            if len(kept) == limit:
                break
    return _matching(kept, k)


class _Arc:
    """A residual arc of the min-cost-flow network."""

    __slots__ = ("cap", "cost", "head", "rev")

    def __init__(self, head: int, cap: int, cost: tuple[Decimal, ...], rev: int) -> None:
        self.head = head
        self.cap = cap
        self.cost = cost
        self.rev = rev


def _matching(items: list[SubsetItem], k: int) -> list[SubsetItem] | None:
    """Max-weight matching of exactly k items (companies × groups), by min-cost flow.

    1. Network: source → company (capacity 1) → group (one arc per item, cost = -weight) →
       sink (capacity 1); an item without group goes straight to the sink.
    2. k times: shortest source–sink path in the residual network (Bellman-Ford, costs are
       lexicographic tuples, which add and compare like numbers), push one unit along it.
       Successive shortest paths keep the flow min-cost for every flow value.
    3. The item arcs carrying flow are the answer.
    """
    if len(items) < k:
        return None
    width = len(items[0].weight)
    zero = (ZERO,) * width
    source, sink = 0, 1
    graph: list[list[_Arc]] = [[], []]
    companies: dict[int, int] = {}
    groups: dict[int, int] = {}

    def add(tail: int, head: int, cost: tuple[Decimal, ...]) -> _Arc:
        arc = _Arc(head, 1, cost, len(graph[head]))
        graph[tail].append(arc)
        graph[head].append(_Arc(tail, 0, tuple(-c for c in cost), len(graph[tail]) - 1))
        return arc

    def new_node() -> int:
        graph.append([])
        return len(graph) - 1

    item_arcs: list[tuple[_Arc, SubsetItem]] = []
    for it in items:
        company = companies.get(it.company_id)
        if company is None:
            company = companies[it.company_id] = new_node()
            add(source, company, zero)
        head = sink
        if it.group_id is not None:
            found = groups.get(it.group_id)
            if found is None:
                found = groups[it.group_id] = new_node()
                add(found, sink, zero)
            head = found
        item_arcs.append((add(company, head, tuple(-w for w in it.weight)), it))

    size = len(graph)
    for _ in range(k):
        dist: list[tuple[Decimal, ...] | None] = [None] * size
        back: list[tuple[int, _Arc] | None] = [None] * size
        dist[source] = zero
        changed = True
        while changed:  # Bellman-Ford; the residual network never has a negative cycle
            changed = False
            for tail in range(size):
                base = dist[tail]
                if base is None:
                    continue
                for arc in graph[tail]:
                    if arc.cap <= 0:
                        continue
                    cand = tuple(a + b for a, b in zip(base, arc.cost, strict=True))
                    old = dist[arc.head]
                    if old is None or cand < old:
                        dist[arc.head] = cand
                        back[arc.head] = (tail, arc)
                        changed = True
        if dist[sink] is None:
            return None
        at = sink
        while at != source:
            step = back[at]
            assert step is not None  # every node on the path was reached from the source
            tail, arc = step
            arc.cap -= 1
            graph[at][arc.rev].cap += 1
            at = tail
    return [it for arc, it in item_arcs if arc.cap == 0]


# --------------------------------------------------------------------------- selection


class _State:
    """The lead's outbound situation while rules choose (copied per rule, committed after)."""

    __slots__ = ("companies", "count", "groups", "limit", "max_mult")

    def __init__(
        self, count: int, limit: int, max_mult: int, companies: set[int], groups: set[int]
    ) -> None:
        self.count = count
        self.limit = limit
        self.max_mult = max_mult
        self.companies = companies
        self.groups = groups

    @classmethod
    def initial(cls, lead: InboundLeadSnapshot, workflow: WorkflowSnapshot) -> _State:
        max_mult = _NO_LIMIT if workflow.max_multiplication is None else workflow.max_multiplication
        return cls(
            lead.outbound_count,
            _limit(lead, workflow),
            max_mult,
            set(lead.received_company_ids),
            set(lead.received_group_ids),
        )

    def copy(self) -> _State:
        return _State(self.count, self.limit, self.max_mult, set(self.companies), set(self.groups))

    def full_reason(self) -> Reason:
        return (
            Reason.MULTIPLICATION_REACHED
            if self.count >= self.max_mult
            else Reason.SHARE_COUNT_EXCEEDED
        )

    def conflicts(self, c: ContractSnapshot) -> bool:
        return c.company_id in self.companies or (
            c.contract_group_id is not None and c.contract_group_id in self.groups
        )

    def add(self, c: ContractSnapshot) -> None:
        self.count += 1
        self.limit = min(self.limit, c.max_share_count)
        self.companies.add(c.company_id)
        if c.contract_group_id is not None:
            self.groups.add(c.contract_group_id)


class _HeapOrder:
    """Ascending order of key tuples (last element: the contract id), produced lazily.

    A rule usually needs its first few contracts only, so the keys are heapified (linear)
    rather than sorted; the untouched tail is sorted only if the explanation is read.
    With `refine` (distance mode) a key may hold a proven lower bound; when it reaches the
    top it is replaced by a tighter key (finally the exact one) and pushed back. An exact
    key on top is next in exact order, because every other key is at most that contract's
    exact key.
    """

    __slots__ = ("exact", "heap", "refine")

    def __init__(
        self,
        keys: list[Entry],
        refine: Callable[[int], tuple[Entry, bool]] | None = None,
        exact: set[int] | None = None,
    ) -> None:
        heapq.heapify(keys)
        self.heap = keys
        self.refine = refine
        self.exact = exact if exact is not None else set()

    def next_id(self) -> int | None:
        heap = self.heap
        while heap:
            cid = _entry_id(heapq.heappop(heap))
            if self.refine is None or cid in self.exact:
                return cid
            tighter, is_exact = self.refine(cid)
            if is_exact:
                self.exact.add(cid)
            heapq.heappush(heap, tighter)
        return None

    def remaining(self) -> int:
        return len(self.heap)

    def tail(self, start: int, position: int, reason: Reason) -> _Event:
        return _RankedKeys(self.heap, start, position, reason)


class _SortedOrder:
    """An order whose keys never change for a contract (QS, free trial, turnover), presorted
    once per `ContractTable` and read in place: the same interface as `_HeapOrder`."""

    __slots__ = ("contracts", "pos", "seq")

    def __init__(self, seq: list[int], contracts: Sequence[ContractSnapshot]) -> None:
        self.seq = seq  # contract indices in order
        self.contracts = contracts
        self.pos = 0

    def next_id(self) -> int | None:
        if self.pos >= len(self.seq):
            return None
        idx = self.seq[self.pos]
        self.pos += 1
        return self.contracts[idx].id

    def remaining(self) -> int:
        return len(self.seq) - self.pos

    def tail(self, start: int, position: int, reason: Reason) -> _Event:
        return _RankedTail(self.seq[self.pos :], start, position, reason)


_Order = _HeapOrder | _SortedOrder


def _entry_id(entry: Entry) -> int:
    last = entry[-1]
    return int(last[-1] if type(last) is tuple else last)


def _spherical_bounds(
    pool: list[int], contracts: Sequence[ContractSnapshot], ctx: _LeadContext
) -> list[float]:
    """Per contract, a proven lower bound of the geodesic km to its nearest location.

    1. Great-circle distance from the lead to every location of the pool, vectorised.
    2. The minimum per contract (infinity without locations), shrunk by the proven
       sphere/ellipsoid margin.
    """
    flat = [contracts[i].loc_rad for i in pool]
    counts = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat)) // 2
    bounds = np.full(len(pool), _INF)
    total = int(counts.sum())
    if total:
        coords = np.fromiter(chain.from_iterable(flat), dtype=np.float64, count=2 * total)
        lat, lon = coords[0::2], coords[1::2]
        h = (
            np.sin((lat - ctx.lat_r) * 0.5) ** 2
            + ctx.cos_lat * np.cos(lat) * np.sin((lon - ctx.lon_r) * 0.5) ** 2
        )
        km = 2.0 * _EARTH_MEAN_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
        has = counts > 0
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[has]
        bounds[has] = np.maximum(np.minimum.reduceat(km, starts) * _LOW - _SLACK_KM, 0.0)
    result: list[float] = bounds.tolist()
    return result


def _distance_order(
    pool: list[int],
    contracts: Sequence[ContractSnapshot],
    index_of: dict[int, int],
    ctx: _LeadContext,
) -> _HeapOrder:
    """Nearest first, exactly, with as few geodesics as possible.

    1. Each contract starts under a proven lower bound: the great-circle distance to its
       nearest location, shrunk by the sphere/ellipsoid margin (infinity without
       locations), computed for the whole pool at once.
    2. A bound that reaches the top of the heap is replaced by the exact geodesic (cached
       per lead). A lead without coordinates puts every contract at infinity, so the
       order is by QS, price and id.
    """
    if not ctx.has_point:
        return _HeapOrder([(_INF, contracts[i].qs_key) for i in pool])
    qs_keys = [contracts[i].qs_key for i in pool]
    keys: list[Entry] = list(zip(_spherical_bounds(pool, contracts, ctx), qs_keys, strict=True))

    def refine(cid: int) -> tuple[Entry, bool]:
        c = contracts[index_of[cid]]
        return (ctx.nearest(c), c.qs_key), True

    return _HeapOrder(keys, refine)


def _order(
    mode: SelectionMode,
    pool: list[int],
    contracts: Sequence[ContractSnapshot],
    index_of: dict[int, int],
    ctx: _LeadContext,
    rng: random.Random,
    presorted: Callable[[str], list[int] | None] | None = None,
) -> _Order:
    # Every key ends with (-quality score, -price, id): "equally placed contracts are
    # further sorted by QS and price", then by id so the order is total.
    if presorted is not None and mode in (SelectionMode.QS, SelectionMode.FREE_TRIAL):
        seq = presorted("qs" if mode is SelectionMode.QS else "trial")
        if seq is not None:
            return _SortedOrder(seq, contracts)
    if mode is SelectionMode.QS:
        return _HeapOrder([contracts[i].qs_key for i in pool])
    if mode is SelectionMode.ROUND_ROBIN:
        return _HeapOrder([contracts[i].rr_key for i in pool])
    if mode is SelectionMode.FREE_TRIAL:
        return _HeapOrder([contracts[i].trial_key for i in pool])
    if mode is SelectionMode.RANDOM:
        # One draw per contract, in id order (the pool is): reproducible for a given seed.
        # Draws are distinct floats, so no two contracts are equally placed (ties, at odds
        # of about 1e-9 for 10,000 contracts, fall to the id).
        ids = [contracts[i].id for i in pool]
        draw = rng.random
        return _HeapOrder(list(zip([draw() for _ in ids], ids, strict=True)))
    if mode is SelectionMode.DISTANCE:
        return _distance_order(pool, contracts, index_of, ctx)
    raise ValueError(f"{mode} is not an ordering mode")


def _walk(
    order: _Order,
    index_of: dict[int, int],
    contracts: Sequence[ContractSnapshot],
    rule: SelectionRuleSnapshot,
    state: _State,
    log: list[_Event],
) -> tuple[list[int], int]:
    """Take contracts in order while take, multiplication and share counts allow.

    1. Skip a contract whose company or group already has the lead (or was just chosen),
       or whose own max_share_count cannot accept one more outbound lead.
    2. Take the others until `take` is reached or the lead is full; the rest keep their
       rank with the reason that stopped the rule.
    Returns the taken indices and how many contracts the rule ranked.
    """
    taken: list[int] = []
    examined: list[int] = []
    reasons: list[Reason | None] = []
    stop: Reason | None = None
    while True:
        cid = order.next_id()
        if cid is None:
            break
        idx = index_of[cid]
        c = contracts[idx]
        examined.append(idx)
        if state.conflicts(c):
            reasons.append(Reason.COMPANY_ALREADY_SELECTED)
            continue
        if c.max_share_count < state.count + 1:
            reasons.append(Reason.SHARE_COUNT_EXCEEDED)
            continue
        reasons.append(None)
        state.add(c)
        taken.append(idx)
        if len(taken) >= rule.take:
            stop = Reason.TAKE_REACHED
            break
        if state.count >= state.limit:
            stop = state.full_reason()
            break
    log.append(_Ranked(examined, reasons, 1, rule.position))
    if stop is not None and order.remaining():
        log.append(order.tail(len(examined) + 1, rule.position, stop))
    return taken, len(examined) + order.remaining()


def _candidates(
    order: _Order,
    index_of: dict[int, int],
    contracts: Sequence[ContractSnapshot],
    state: _State,
    size: int,
) -> tuple[list[int], list[int]]:
    """The contracts that can matter to `best_subset`, read from the ranked order lazily.

    For each final size k ≤ `size`, `_best_of_size` only ever looks at the items of E_k
    (max_share_count ≥ count + k) that survive its pruning: first of their (company,
    group) pair, among the first k of their company and of their group, and among the first
    2k(k-1)+1 such. The same pruning is replayed here in rank order, per k, and the scan
    stops once every k has its full quota, so 10,000 ranked contracts usually cost a few
    dozen steps. Any superset of those survivors gives `best_subset` the same optimum.
    Returns (the contracts scanned, in rank order; the useful ones among them).
    """
    count = state.count
    quota = {k: 2 * k * (k - 1) + 1 for k in range(1, size + 1)}
    open_sizes = set(quota)
    pairs: dict[int, set[tuple[int, int | None]]] = {k: set() for k in quota}
    per_company: dict[int, dict[int, int]] = {k: {} for k in quota}
    per_group: dict[int, dict[int, int]] = {k: {} for k in quota}
    kept = dict.fromkeys(quota, 0)
    scanned: list[int] = []
    useful: list[int] = []
    while open_sizes:
        cid = order.next_id()
        if cid is None:
            break
        idx = index_of[cid]
        scanned.append(idx)
        c = contracts[idx]
        if state.conflicts(c):
            continue
        pair = (c.company_id, c.contract_group_id)
        keep = False
        for k in range(1, min(size, c.max_share_count - count) + 1):
            if k not in open_sizes or pair in pairs[k]:
                continue
            pairs[k].add(pair)
            by_company = per_company[k][c.company_id] = per_company[k].get(c.company_id, 0) + 1
            by_group = 0
            if c.contract_group_id is not None:
                groups = per_group[k]
                by_group = groups[c.contract_group_id] = groups.get(c.contract_group_id, 0) + 1
            if by_company <= k and by_group <= k:
                keep = True
                kept[k] += 1
                if kept[k] == quota[k]:
                    open_sizes.discard(k)
        if keep:
            useful.append(idx)
    return scanned, useful


def _optimise(
    mode: SelectionMode,
    pool: list[int],
    index_of: dict[int, int],
    contracts: Sequence[ContractSnapshot],
    rule: SelectionRuleSnapshot,
    state: _State,
    log: list[_Event],
    presorted: Callable[[str], list[int] | None] | None = None,
) -> tuple[list[int], int]:
    """Turnover / lead count: the exact best subset, then the explanation of the rest.

    1. Rank by the mode's weight (price; for lead count every contract weighs one first,
       so the same order), then QS, price, id — float keys order money amounts exactly (a
       price has far fewer than 15 significant digits); sums stay Decimal.
    2. Read only the contracts that can matter (`_candidates`) and solve exactly
       (`best_subset`).
    3. Explain: the chosen first, then the other examined contracts with why each could not
       join, then the unexamined tail (ranked only if the explanation is read).
    """
    seq = presorted("turnover") if presorted is not None else None
    order: _Order = (
        _SortedOrder(seq, contracts)
        if seq is not None
        else _HeapOrder([contracts[i].turnover_key for i in pool])
    )
    size = max(0, min(rule.take, state.limit - state.count))
    scanned, useful = _candidates(order, index_of, contracts, state, size)
    one = Decimal(1)
    items = []
    for position, i in enumerate(useful):
        c = contracts[i]
        qs = Decimal(c.quality_score)
        weight = (c.price, qs) if mode is SelectionMode.TURNOVER else (one, c.price, qs)
        items.append(
            SubsetItem(i, weight, c.max_share_count, c.company_id, c.contract_group_id, position)
        )
    chosen = best_subset(
        items, outbound_count=state.count, limit=state.limit, take=rule.take, presorted=True
    )
    taken_set = {it.ref for it in chosen}
    taken = [i for i in useful if i in taken_set]
    blocked = {i for i in scanned if state.conflicts(contracts[i])}
    for idx in taken:
        state.add(contracts[idx])
    others = [i for i in scanned if i not in taken_set]
    reasons: list[Reason | None] = [None] * len(taken)
    for idx in others:
        # Why this one could not simply join the chosen set (it would add weight if it could).
        c = contracts[idx]
        if idx in blocked or state.conflicts(c):
            reasons.append(Reason.COMPANY_ALREADY_SELECTED)
        elif len(taken) >= rule.take:
            reasons.append(Reason.TAKE_REACHED)
        elif state.count >= state.limit:
            reasons.append(state.full_reason())
        elif c.max_share_count < state.count + 1:
            reasons.append(Reason.SHARE_COUNT_EXCEEDED)
        else:
            reasons.append(Reason.NOT_SELECTED_RANK)
    log.append(_Ranked(taken + others, reasons, 1, rule.position))
    if order.remaining():
        if len(taken) >= rule.take:
            tail = Reason.TAKE_REACHED
        elif state.count >= state.limit:
            tail = state.full_reason()
        else:
            tail = Reason.NOT_SELECTED_RANK
        log.append(order.tail(len(scanned) + 1, rule.position, tail))
    return taken, len(scanned) + order.remaining()


def select_contracts(
    lead: InboundLeadSnapshot,
    contracts: Sequence[ContractSnapshot] | ContractTable,
    workflow: WorkflowSnapshot,
    now: datetime,
    rng: random.Random,
) -> SelectionDecision:
    """Choose the contracts that receive a lead by the workflow's contract selection rules.

    1. Eligibility of every contract (a reason code for each ineligible one).
    2. Rules in position order; each sees the eligible contracts not chosen yet and takes at
       most `take` of them in its mode's order (qs, random, round_robin, distance,
       free_trial) or as the exact best subset (turnover, lead_count). Throughout, the lead's
       final count of (non-cherry-picked) outbound leads stays within the workflow's
       max_multiplication and the max_share_count of every contract holding it, existing
       or newly chosen, and no company or contract group gets it twice.
    3. A rule whose selection turns over less than its min_turnover is skipped; its
       contracts stay available to the next rules.
    4. If the whole selection misses the workflow's min_contracts / min_turnover, nothing is
       chosen and the decision says why.
    CONTRACTS may be a `ContractTable` (compiled once for many leads): the same decision,
    with eligibility computed for all contracts at once.
    """
    return _select(_screen(lead, contracts, now), workflow, rng)


class _Screened(NamedTuple):
    ctx: _LeadContext
    contracts: tuple[ContractSnapshot, ...]
    base: np.ndarray  # reason code per contract (0: eligible)
    eligible: list[int]
    ineligible: list[int]
    index_of: dict[int, int]
    table: ContractTable | None = None
    mask: np.ndarray | None = None  # eligible, with a table


def _screen(
    lead: InboundLeadSnapshot,
    contracts: Sequence[ContractSnapshot] | ContractTable,
    now: datetime,
) -> _Screened:
    """Eligibility of every contract, in id order (ids must be unique)."""
    if isinstance(contracts, ContractTable):
        return contracts.screen(lead, now)
    ctx = _LeadContext(lead, now)
    contracts = tuple(contracts)
    n = len(contracts)
    base: list[Reason | None] = [None] * n
    eligible: list[int] = []
    ineligible: list[int] = []
    index_of: dict[int, int] = {}
    ids = [c.id for c in contracts]
    for idx in sorted(range(n), key=ids.__getitem__):
        c = contracts[idx]
        if c.id in index_of:
            raise ValueError(f"contract id {c.id} passed twice")
        index_of[c.id] = idx
        why = _eligibility(c, ctx)
        base[idx] = why
        (ineligible if why is not None else eligible).append(idx)
    return _Screened(ctx, contracts, _codes_of(base), eligible, ineligible, index_of)


def _select(
    screened: _Screened, workflow: WorkflowSnapshot, rng: random.Random
) -> SelectionDecision:
    """Steps 2-4 of `select_contracts`, on screened contracts."""
    ctx, contracts, base, eligible, ineligible, index_of, table, mask = screened
    lead = ctx.lead
    state = _State.initial(lead, workflow)
    rules = sorted(workflow.rules, key=lambda r: r.position)
    log: list[_Event] = [_Relabel(eligible, Reason.NO_RULE)]
    outcomes: list[RuleOutcome] = []
    chosen: list[tuple[int, SelectionRuleSnapshot]] = []
    chosen_set: set[int] = set()

    for rule in rules:
        pool = [i for i in eligible if i not in chosen_set] if chosen_set else eligible
        if not pool:
            outcomes.append(_outcome(rule, 0, (), ZERO, reason=Reason.NO_CANDIDATES))
            continue
        if state.count >= state.limit:
            full = state.full_reason()
            log.append(_Relabel(pool, full))
            outcomes.append(_outcome(rule, 0, (), ZERO, reason=full))
            continue
        trial = state.copy()
        presorted = (
            _presorted(table, mask, chosen_set) if table is not None and mask is not None else None
        )
        if rule.take <= 0:
            log.append(_Relabel(pool, Reason.TAKE_REACHED))
            taken: list[int] = []
            considered = 0
        elif rule.mode in (SelectionMode.TURNOVER, SelectionMode.LEAD_COUNT):
            taken, considered = _optimise(
                rule.mode, pool, index_of, contracts, rule, trial, log, presorted
            )
        else:
            order = _order(rule.mode, pool, contracts, index_of, ctx, rng, presorted)
            taken, considered = _walk(order, index_of, contracts, rule, trial, log)
        turnover = sum((contracts[i].price for i in taken), ZERO)
        ids = tuple(contracts[i].id for i in taken)
        if taken and rule.min_turnover is not None and turnover < rule.min_turnover:
            log.append(_Relabel(taken, Reason.RULE_SKIPPED_MIN_TURNOVER))
            outcomes.append(
                _outcome(
                    rule, considered, ids, turnover, Reason.RULE_SKIPPED_MIN_TURNOVER, skipped=True
                )
            )
            continue
        state = trial
        chosen.extend((idx, rule) for idx in taken)
        chosen_set.update(taken)
        outcomes.append(
            _outcome(rule, considered, ids, turnover, None if taken else Reason.NOTHING_SELECTED)
        )

    turnover = sum((contracts[i].price for i, _ in chosen), ZERO)
    reason: Reason | None = None
    if lead.campaign is None:
        reason = Reason.NO_CAMPAIGN
    elif not chosen:
        if lead.outbound_count >= _limit(lead, workflow):
            reason = _State.initial(lead, workflow).full_reason()
        elif not eligible:
            reason = Reason.NO_ELIGIBLE_CONTRACTS
        elif not rules:
            reason = Reason.NO_SELECTION_RULES
        else:
            reason = Reason.NOTHING_SELECTED
    elif len(chosen) < workflow.min_contracts:
        reason = Reason.MIN_CONTRACTS_NOT_REACHED
    elif workflow.min_turnover is not None and turnover < workflow.min_turnover:
        reason = Reason.MIN_TURNOVER_NOT_REACHED
    if reason is not None and chosen:
        log.append(_Relabel([idx for idx, _ in chosen], Reason.TOTAL_MINIMUMS_NOT_REACHED))
        chosen, turnover = [], ZERO

    return _decision(
        lead,
        contracts,
        ctx,
        base,
        log,
        eligible,
        ineligible,
        chosen,
        outcomes,
        turnover,
        reason,
        ids=table.ids if table is not None else None,
    )


def _presorted(
    table: ContractTable, mask: np.ndarray, chosen: set[int]
) -> Callable[[str], list[int] | None]:
    """The table's static orders restricted to this rule's pool (eligible, not chosen)."""

    def read(key: str) -> list[int] | None:
        pool = mask
        if chosen:
            pool = mask.copy()
            pool[list(chosen)] = False
        order = table.orders[key]
        seq: list[int] = order[pool[order]].tolist()
        return seq

    return read


def _outcome(
    rule: SelectionRuleSnapshot,
    considered: int,
    ids: tuple[int, ...],
    turnover: Decimal,
    reason: Reason | None,
    *,
    skipped: bool = False,
) -> RuleOutcome:
    return RuleOutcome(
        rule.position, rule.mode, rule.take, considered, ids, turnover, skipped, reason
    )


def _decision(
    lead: InboundLeadSnapshot,
    contracts: tuple[ContractSnapshot, ...],
    ctx: _LeadContext,
    base: Sequence[Reason | None] | np.ndarray,
    log: list[_Event],
    eligible: list[int],
    ineligible: list[int],
    chosen: Sequence[tuple[int, SelectionRuleSnapshot | None]],
    outcomes: list[RuleOutcome],
    turnover: Decimal,
    reason: Reason | None,
    notes: dict[int, Reason] | None = None,
    ids: np.ndarray | None = None,
) -> SelectionDecision:
    # The rank a chosen contract had in the rule that chose it: the last _Ranked entry.
    chosen_rank: dict[int, int] = {}
    wanted = {idx for idx, _ in chosen}
    for event in log:
        if isinstance(event, _Ranked):
            for offset, idx in enumerate(event.indices, event.start):
                if idx in wanted:
                    chosen_rank[idx] = offset
    picked = tuple(
        ChosenContract(
            contracts[idx].id,
            contracts[idx].company_id,
            contracts[idx].price,
            rule.position if rule is not None else None,
            rule.mode if rule is not None else None,
            chosen_rank.get(idx, 0),
        )
        for idx, rule in chosen
    )
    explanation = Explanation(
        contracts=contracts,
        base=base,
        log=tuple(log),
        chosen=tuple(idx for idx, _ in chosen),
        eligible=eligible,
        ineligible=ineligible,
        distances=dict(ctx.exact),
        notes=notes or {},
        ids=ids,
    )
    return SelectionDecision(
        lead_id=lead.id,
        chosen=picked,
        turnover=turnover,
        reason=reason,
        rules=tuple(outcomes),
        outbound_count_before=lead.outbound_count,
        outbound_count_after=lead.outbound_count + len(picked),
        explanation=explanation,
    )


def check_manual_selection(
    lead: InboundLeadSnapshot,
    contracts: Sequence[ContractSnapshot],
    workflow: WorkflowSnapshot,
    now: datetime,
) -> SelectionDecision:
    """Accept a manager's chosen contracts, in the given order, as far as hard limits allow.

    1. A contract is refused when inactive, when its company or group already has the lead
       (or was accepted just before), or when one more outbound lead would break the
       workflow's max_multiplication or a max_share_count (existing holders, the contract,
       the contracts accepted before it).
    2. Softer eligibility findings (caps, dates, hours, area, campaign, …) do not block a
       manual distribution; they come back as the line's `note` so the page can warn.
    Cherry-picking is not this: it bypasses every check and is not counted by the services.
    """
    ctx = _LeadContext(lead, now)
    contracts = tuple(contracts)
    state = _State.initial(lead, workflow)
    notes: dict[int, Reason] = {}
    base: list[Reason | None] = [None] * len(contracts)
    accepted: list[tuple[int, SelectionRuleSnapshot | None]] = []
    refused: list[int] = []
    for idx, c in enumerate(contracts):
        why: Reason | None
        if not c.active:
            why = Reason.INACTIVE
        elif c.company_id in lead.received_company_ids or (
            c.contract_group_id is not None and c.contract_group_id in lead.received_group_ids
        ):
            why = Reason.ALREADY_RECEIVED
        elif state.conflicts(c):
            why = Reason.COMPANY_ALREADY_SELECTED
        elif state.count >= state.limit:
            why = state.full_reason()
        elif c.max_share_count < state.count + 1:
            why = Reason.SHARE_COUNT_EXCEEDED
        else:
            why = None
            soft = _eligibility(c, ctx)
            if soft is not None and soft not in _MANUAL_HARD and soft is not Reason.NO_CAMPAIGN:
                notes[idx] = soft
            state.add(c)
            accepted.append((idx, None))
        base[idx] = why
        if why is not None:
            refused.append(idx)
    turnover = sum((contracts[i].price for i, _ in accepted), ZERO)
    reason = None if accepted else Reason.NOTHING_SELECTED
    log: list[_Event] = [_Ranked(range(len(contracts)), base, 1, None)]
    return _decision(
        lead, contracts, ctx, base, log, [], refused, accepted, [], turnover, reason, notes
    )
