"""The compiled contract table: eligibility of many contracts for one lead, vectorised."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from distribution.engine.marketplace.eligibility import (
    MAX_I64,
    MICROSECOND,
    MIN_I64,
    LeadContext,
    Screened,
    age_limit_us,
    day_number,
    out_of_dates,
    score_too_low,
    screen_each,
    too_old,
)
from distribution.engine.marketplace.explanation import CODE
from distribution.engine.marketplace.geo import (
    EARTH_MEAN_KM,
    SLACK_KM,
    curvature_bounds,
    distance_km,
)
from distribution.engine.marketplace.shares import tolerates
from distribution.engine.marketplace.types import (
    ContractSnapshot,
    DeliverySchedule,
    InboundLeadSnapshot,
    Key,
    LocationPoint,
    Reason,
)

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
            day_number(c.starts, MIN_I64),
            day_number(c.ends, MAX_I64),
            self._campaigns.setdefault(c.campaign, len(self._campaigns)),
            c.contract_group_id if c.contract_group_id is not None else -1,
            c.max_share_count,
            CODE[c.cap_reason],
            age_limit_us(c.max_lead_age),
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

    def screen(self, lead: InboundLeadSnapshot, now: datetime) -> Screened:
        """Eligibility of every contract for LEAD, vectorised; the same reason codes as
        `check_contract` contract by contract (first failing check wins)."""
        ctx = LeadContext(lead, now)
        if ctx.age is None:  # a naive created_at: the contract-by-contract path says why
            return screen_each(lead, self._rows, now)
        n = len(self._rows)
        if lead.campaign is None:
            codes = np.full(n, CODE[Reason.NO_CAMPAIGN], dtype=np.int16)
        else:
            today = ctx.today.toordinal()
            after = ctx.count + 1
            checks: list[tuple[Any, Reason]] = [
                (~self.active, Reason.INACTIVE),
                (self.paused, Reason.PAUSED),
                (out_of_dates(today, self.starts, self.ends), Reason.OUT_OF_DATES),
                (self.campaign != self._campaigns.get(lead.campaign, -2), Reason.OTHER_CAMPAIGN),
            ]
            if ctx.has_holders:
                received = np.isin(self.company, list(lead.received_company_ids))
                if lead.received_group_ids:
                    received |= (self.group >= 0) & np.isin(
                        self.group, list(lead.received_group_ids)
                    )
                checks.append((received, Reason.ALREADY_RECEIVED))
            if not ctx.holders_ok:
                checks.append((np.ones(n, dtype=bool), Reason.SHARE_COUNT_EXCEEDED))
            else:
                checks.append((~tolerates(self.share, after), Reason.SHARE_COUNT_EXCEEDED))
            checks.append((self.cap == CODE[Reason.CAP_REACHED], Reason.CAP_REACHED))
            checks.append((self.cap == CODE[Reason.BUDGET_REACHED], Reason.BUDGET_REACHED))
            checks.append((too_old(self.max_age, ctx.age // MICROSECOND), Reason.LEAD_TOO_OLD))
            has_min = ~np.isnan(self.min_score)
            checks.append(
                (has_min & score_too_low(self.min_score, lead.score), Reason.SCORE_TOO_LOW)
            )
            if self.schedules:
                open_now = np.array([ctx.is_open(s) for s in self.schedules] + [True])
                checks.append((~open_now[self.schedule], Reason.OUTSIDE_DELIVERY_HOURS))
            codes = np.select(
                [np.broadcast_to(cond, (n,)) for cond, _ in checks],
                [CODE[why] for _, why in checks],
                default=0,
            ).astype(np.int16)
            pending = (codes == 0) & ~np.isnan(self.radius)
            if pending.any():
                if ctx.has_point:
                    inside = self._within(ctx, pending)
                    codes[pending & ~inside] = CODE[Reason.OUT_OF_SERVICE_AREA]
                else:  # nobody knows where the lead is: not "out of area"
                    codes[pending] = CODE[Reason.NO_COORDINATES]
        mask = codes == 0
        return Screened(
            ctx,
            tuple(self._rows),
            codes,
            np.flatnonzero(mask).tolist(),
            np.flatnonzero(~mask).tolist(),
            self.index_of,
            self,
            mask,
        )

    def _within(self, ctx: LeadContext, pending: np.ndarray) -> np.ndarray:
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
        low, high = curvature_bounds(abs(ctx.lat_r), np.abs(rad[:, 0]), theta)
        approx = EARTH_MEAN_KM * theta
        radius = self.loc_radius[rows]
        hit = approx * high + SLACK_KM <= radius
        unsure = ~hit & (np.maximum(approx * low - SLACK_KM, 0.0) <= radius)
        for k in np.flatnonzero(unsure).tolist():
            if distance_km(lat, lon, self.loc_points[rows[k]]) <= radius[k]:
                hit[k] = True
        inside[self.loc_owner[rows[hit]]] = True
        return inside


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


def screen(
    lead: InboundLeadSnapshot,
    contracts: Sequence[ContractSnapshot] | ContractTable,
    now: datetime,
) -> Screened:
    """Eligibility of every contract, in id order (ids must be unique): vectorised over a
    table, else contract by contract."""
    if isinstance(contracts, ContractTable):
        return contracts.screen(lead, now)
    return screen_each(lead, contracts, now)
