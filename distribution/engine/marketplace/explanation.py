"""The explanation of a decision: a short log of what each rule did, replayed on first
use into a reason code, rank and rule per contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from distribution.engine.marketplace.types import CandidateExplanation, Reason

if TYPE_CHECKING:
    from distribution.engine.marketplace.types import ContractSnapshot

# Heap entries of an ordering: a flat Key, or (distance, qs_key) in distance mode.
Entry = tuple[Any, ...]


def entry_id(entry: Entry) -> int:
    """The contract id an order entry ends with."""
    last = entry[-1]
    return int(last[-1] if type(last) is tuple else last)


class Ranked(NamedTuple):
    """`indices` ranked start, start + 1, …, each with its own reason."""

    indices: Sequence[int]
    reasons: Sequence[Reason | None]
    start: int
    position: int | None


class RankedKeys(NamedTuple):
    """A tail still in heap form: sorted (keys end with the contract id) only when explained."""

    keys: Sequence[Entry]
    start: int
    position: int
    reason: Reason


class RankedTail(NamedTuple):
    """A tail already in order (indices of a presorted order): ranked start, start + 1, …"""

    indices: Sequence[int]
    start: int
    position: int
    reason: Reason


class Relabel(NamedTuple):
    """A new reason for `indices`, ranks unchanged."""

    indices: Sequence[int]
    reason: Reason


Event = Ranked | RankedKeys | RankedTail | Relabel

# Reasons as small integers (0: chosen / eligible) for the vectorised paths.
REASONS: tuple[Reason | None, ...] = (None, *Reason)
CODE = {r: i for i, r in enumerate(REASONS)}
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
        log: tuple[Event, ...],
        chosen: tuple[int, ...],
        eligible: Sequence[int],
        ineligible: Sequence[int],
        distances: dict[int, float],
        notes: dict[int, Reason],
        ids: np.ndarray | None = None,
    ) -> None:
        self._contracts = contracts
        self._base = base if isinstance(base, np.ndarray) else codes_of(base)
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
            if isinstance(event, Ranked):
                idx = _index_array(event.indices)
                if idx.size:
                    rank[idx] = np.arange(event.start, event.start + idx.size)
                    rule[idx] = _UNRANKED if event.position is None else event.position
                    reason[idx] = np.fromiter(
                        (CODE[r] for r in event.reasons), dtype=np.int16, count=idx.size
                    )
            elif isinstance(event, RankedKeys):
                if index_of is None:
                    index_of = {contracts[i].id: i for i in self._eligible}
                ordered = [index_of[entry_id(key)] for key in sorted(event.keys)]
                idx = _index_array(ordered)
                if idx.size:
                    rank[idx] = np.arange(event.start, event.start + idx.size)
                    rule[idx] = event.position
                    reason[idx] = CODE[event.reason]
            elif isinstance(event, RankedTail):
                idx = _index_array(event.indices)
                if idx.size:
                    rank[idx] = np.arange(event.start, event.start + idx.size)
                    rule[idx] = event.position
                    reason[idx] = CODE[event.reason]
            else:
                idx = _index_array(event.indices)
                if idx.size:
                    reason[idx] = CODE[event.reason]
        self._replayed = (reason, rank, rule)
        return self._replayed

    def _line(self, idx: int) -> CandidateExplanation:
        reason, rank, rule = self._replay()
        c = self._contracts[idx]
        r, k = int(rank[idx]), int(rule[idx])
        return CandidateExplanation(
            c.id,
            c.company_id,
            REASONS[reason[idx]],
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

    def columns(self) -> dict[str, Any]:
        """Every contract's line as columns of plain lists, in the contracts' own order:
        `contract_id`, `reason` (an index into `codes`, whose entry "" is chosen/eligible),
        `rank` and `rule` (-1: none), `chosen` (the chosen contract ids in selection order),
        and, where there are some, `distance_km` and `note` by position. Built from the
        replayed arrays, without a line object per contract."""
        reason, rank, rule = self._replay()
        contracts = self._contracts
        ids = self._ids
        if ids is None:
            ids = np.fromiter((c.id for c in contracts), np.int64, len(contracts))
        used, inverse = np.unique(reason, return_inverse=True)
        codes = ["" if REASONS[int(k)] is None else str(REASONS[int(k)]) for k in used.tolist()]
        distances = self._distances
        positions = {int(cid): i for i, cid in enumerate(ids.tolist())} if distances else {}
        return {
            "contract_id": ids.tolist(),
            "reason": inverse.astype(np.int64).reshape(-1).tolist(),
            "codes": codes,
            "rank": np.where(rank == _UNRANKED, -1, rank).tolist(),
            "rule": np.where(rule == _UNRANKED, -1, rule).tolist(),
            "chosen": [contracts[i].id for i in self._chosen],
            "distance_km": {
                str(positions[cid]): round(km, 3)
                for cid, km in distances.items()
                if cid in positions and km is not None
            },
            "note": {str(i): str(note) for i, note in self._notes.items()},
        }

    def line_for(self, contract_id: int) -> CandidateExplanation | None:
        """The explanation line of one contract (None if it was not passed in)."""
        if self._by_id is None:
            self._by_id = {line.contract_id: line for line in self.lines()}
        return self._by_id.get(contract_id)

    def reason_counts(self) -> dict[str, int]:
        """How many contracts ended with each reason code ("chosen" for the chosen ones)."""
        reason, _, _ = self._replay()
        counts: list[int] = (
            np.bincount(reason, minlength=len(REASONS)).tolist() if reason.size else []
        )
        return {
            "chosen" if code == 0 else str(REASONS[code]): int(k)
            for code, k in enumerate(counts)
            if k
        }


def _index_array(indices: Sequence[int] | np.ndarray) -> np.ndarray:
    if isinstance(indices, np.ndarray):
        return indices.astype(np.int64, copy=False)
    return np.fromiter(indices, dtype=np.int64, count=len(indices))


def codes_of(reasons: Sequence[Reason | None]) -> np.ndarray:
    """Reason codes as small integers (see CODE)."""
    return np.fromiter((CODE[r] for r in reasons), dtype=np.int16, count=len(reasons))
