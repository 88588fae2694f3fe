"""The exact best subset of contracts that may join a lead (turnover / lead count rules and
the batch optimiser's pricing): a partition matroid, or a small min-cost-flow matching
when contract groups span companies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from distribution.engine.marketplace.shares import tolerates
from distribution.engine.marketplace.types import ZERO


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
        pool = [it for it in ranked if tolerates(it.max_share_count, need)]
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
