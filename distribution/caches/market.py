"""The per-process cache of the marketplace: a campaign's contracts compiled for selection
(`MarketIndex`), kept between leads while the market generation and the transaction that
last refreshed it say it is current."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Max

from distribution.db.usage import cap_usage
from distribution.engine import marketplace as engine
from distribution.engine.caps import window_starts
from distribution.loaders.marketplace import contract_snapshots, contracts_for_campaign
from distribution.models import MarketVersion, OutboundLead


def market_generation() -> int | None:
    """The current market generation (None before anything was ever written)."""
    found = MarketVersion.objects.filter(pk=1).values_list("generation", flat=True).first()
    return None if found is None else int(found)


class MarketIndex:
    """A campaign's contracts compiled for selection, kept per process between leads.

    Built from the same rows as `contract_snapshots` (every location, every delivery hour,
    usage of the current windows) and reused while:
    - the market generation is the one read before building (triggers move it on any edit
      of contracts, companies, locations, delivery hours, or a returned / deleted outbound
      lead — see MarketVersion);
    - the day is the same, and the day window of every capped contract's time zone too;
    - the atomic block that last refreshed it is still open or its transaction committed
      (a rolled-back one may have shown it outbound leads that never existed).
    Before each selection `refresh` reads the outbound leads written since (one query) and
    re-reads the exact usage of the contracts they went to (one more, only if capped). A
    concurrent sale it has not seen yet can only make a contract look less used than it is:
    the service locks every chosen contract and re-checks it exactly before selling
    (`_select_locked`), so caps hold whatever the cache says.
    """

    def __init__(self, *, campaign_id: int, generation: int | None, now: datetime) -> None:
        self.campaign_id = campaign_id
        self.generation = generation
        self.today = now.date()
        self.lock = threading.RLock()
        self.pending: object | None = None  # the transaction that refreshed it last
        self.seen = (
            OutboundLead.objects.filter(contract__campaign_id=campaign_id).aggregate(top=Max("id"))[
                "top"
            ]
            or 0
        )
        rows = contract_snapshots(
            contracts=contracts_for_campaign(campaign_id=campaign_id, today=self.today),
            now=now,
            campaign_id=campaign_id,
        )
        self.names = rows.names
        self.timezones = rows.timezones
        self.table = engine.ContractTable(rows.snapshots)
        self.zones = self._zones(now)

    def _zones(self, now: datetime) -> dict[str, datetime]:
        capped = {c.id for c in self.table.contracts if c.caps != engine.CapLimits()}
        return {tz: window_starts(now, tz)["day"] for tz in {self.timezones[i] for i in capped}}

    def current(self, generation: int | None, now: datetime) -> bool:
        """Still valid for a selection at NOW in the current transaction."""
        if generation is None or generation != self.generation or now.date() != self.today:
            return False
        if self.pending is not None and not any(
            block is self.pending for block in connection.atomic_blocks
        ):
            return False  # refreshed in a block that ended without its commit being seen
        return all(window_starts(now, tz)["day"] == day for tz, day in self.zones.items())

    def refresh(self, now: datetime) -> None:
        """Follow the outbound leads written since the last look (see the class docstring)."""
        new = list(
            OutboundLead.objects.filter(id__gt=self.seen, contract__campaign_id=self.campaign_id)
            .values("contract_id")
            .annotate(top=Max("id"), last=Max("created_at"))
            .order_by()
        )
        if not new:
            return
        self.seen = max(self.seen, *(r["top"] for r in new))
        capped = {}
        for r in new:
            c = self.table.get(r["contract_id"])
            if c is None:
                continue
            if c.caps != engine.CapLimits():
                capped[c.id] = self.timezones[c.id]
            last = r["last"]
            if c.last_outbound_at is None or last > c.last_outbound_at:
                self.table.update(replace(c, last_outbound_at=last))
        usage = cap_usage(contracts=capped, now=now)
        for cid in capped:
            c = self.table.get(cid)
            assert c is not None
            self.put(replace(c, used=usage.get(cid, engine.CapUsage())))
        self.mark()

    def put(self, snapshot: engine.ContractSnapshot) -> None:
        """Swap in a fresher snapshot of one of the contracts."""
        self.table.update(snapshot)
        self.mark()

    def mark(self) -> None:
        """Remember the block that wrote into the index, until its transaction commits."""
        token = _transaction_token()
        if token is None:
            return
        if self.pending is not token:
            self.pending = token
            transaction.on_commit(lambda: self._committed(token))

    def _committed(self, token: object) -> None:
        if self.pending is token:
            self.pending = None


_INDEXES: OrderedDict[int, MarketIndex] = OrderedDict()
_INDEXES_MAX = 16
_INDEXES_LOCK = threading.Lock()


def _transaction_token() -> object | None:
    # The innermost atomic block (transaction or savepoint) the cache reads in: until the
    # transaction commits (on_commit clears it), an index it refreshed is trusted only while
    # that block is still open.
    return connection.atomic_blocks[-1] if connection.in_atomic_block else None


def market_index(*, campaign_id: int, now: datetime) -> MarketIndex:
    """The campaign's compiled contracts, current at NOW (built or refreshed as needed).

    Call with the returned index's `lock` held while selecting (threads share it).
    """
    generation = market_generation()  # read before the rows: a later edit moves it again
    with _INDEXES_LOCK:
        index = _INDEXES.get(campaign_id)
    if index is None or not index.current(generation, now):
        index = MarketIndex(campaign_id=campaign_id, generation=generation, now=now)
        index.mark()
        with _INDEXES_LOCK:
            _INDEXES[campaign_id] = index
            _INDEXES.move_to_end(campaign_id)
            while len(_INDEXES) > _INDEXES_MAX:
                _INDEXES.popitem(last=False)
        return index
    with index.lock:
        index.refresh(now)
    return index


def market_indexes_clear() -> None:
    """Forget every compiled campaign (tests; a process that wants a fresh start)."""
    with _INDEXES_LOCK:
        _INDEXES.clear()
