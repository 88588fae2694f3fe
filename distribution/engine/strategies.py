"""Ranking strategies: order the eligible members of a pool, best first.

Every strategy breaks its ties by round robin, and round robin breaks its own ties by the
member's position, then by a per-decision random draw — never by id or creation order, so
no senior member wins every tie.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from fractions import Fraction

from distribution.engine.schedule import to_utc
from distribution.engine.types import MemberSnapshot

_NEVER = datetime.min.replace(tzinfo=UTC)

RoundRobinKey = tuple[int, datetime, int, float]


def draw_tiebreaks(members: Sequence[MemberSnapshot], rng: random.Random) -> dict[int, float]:
    """One random draw per member (in the given order), the last resort between ties."""
    return {member.id: rng.random() for member in members}


def round_robin_key(member: MemberSnapshot, tiebreak: Mapping[int, float]) -> RoundRobinKey:
    """Sort key: never-assigned first, then oldest last turn, then position, then the draw."""
    last = member.agent.last_turn_at
    if last is None:
        return (0, _NEVER, member.position, tiebreak.get(member.id, 0.0))
    return (
        1,
        last if last.tzinfo is UTC else to_utc(last),
        member.position,
        tiebreak.get(member.id, 0.0),
    )


def rank_round_robin(
    members: Sequence[MemberSnapshot], tiebreak: Mapping[int, float]
) -> list[MemberSnapshot]:
    """The member whose last turn is oldest comes first (never-assigned before all)."""

    def key(member: MemberSnapshot) -> RoundRobinKey:  # round_robin_key, inlined
        last = member.agent.last_turn_at
        if last is None:
            return (0, _NEVER, member.position, tiebreak.get(member.id, 0.0))
        utc = last if last.tzinfo is UTC else to_utc(last)
        return (1, utc, member.position, tiebreak.get(member.id, 0.0))

    return sorted(members, key=key)


def rank_load_balanced(
    members: Sequence[MemberSnapshot], tiebreak: Mapping[int, float]
) -> list[MemberSnapshot]:
    """Fewest open leads first; ties by round robin."""
    return sorted(members, key=lambda m: (m.agent.open_leads, round_robin_key(m, tiebreak)))


def rank_performance(
    members: Sequence[MemberSnapshot], tiebreak: Mapping[int, float]
) -> list[MemberSnapshot]:
    """Highest conversion rate first; ties by round robin.

    An agent without data in the trailing window (new, or back from absence) comes first,
    so that they get the leads that measure them instead of never being measured.
    """

    def key(member: MemberSnapshot) -> tuple[int, float, RoundRobinKey]:
        metrics = member.agent.metrics
        rate = metrics.conversion_rate if metrics is not None else None
        if rate is None:
            return (0, 0.0, round_robin_key(member, tiebreak))
        return (1, -rate, round_robin_key(member, tiebreak))

    return sorted(members, key=key)


def rank_weighted(
    members: Sequence[MemberSnapshot],
    tiebreak: Mapping[int, float],
    received: Mapping[int, int],
    *,
    catch_up: bool = False,
) -> list[MemberSnapshot]:
    """Smallest (received + 1) ÷ weight first, among members still under their upper quota.

    This is Balinski and Young's quota method: with n leads received and the next one to
    give, member i's exact share is (n + 1)·wᵢ/W. Members that already hold their share
    rounded up wait; the others are ranked by (receivedᵢ + 1)/wᵢ, ties by round robin. It
    keeps every member's count within one lead of its exact share after every lead — plain
    "smallest received ÷ weight" does not (a heavy member starves while the light ones each
    take their first lead).

    1. n = leads received this period by the members ranked; W = the sum of their weights.
    2. Without ``catch_up`` a member below its share rounded down (back from absence) is
       treated as holding that share: absence earns no burst of leads.
    3. Members under their upper quota come first, by (count + 1)/weight, then round robin;
       the rest follow in the same order (they are still eligible, only not preferred).
    """
    n = sum(received.get(m.id, 0) for m in members)
    scaled = _integer_weights(members, n)
    if scaled is not None:
        return _rank_weighted_integers(members, tiebreak, received, scaled, n, catch_up)
    weights = {m.id: Fraction(m.weight) for m in members}
    total_weight = sum(weights.values(), Fraction(0))

    def key(member: MemberSnapshot) -> tuple[int, Fraction, RoundRobinKey]:
        weight = weights[member.id]
        count = received.get(member.id, 0)
        if not catch_up:
            count = max(count, math.floor(n * weight / total_weight))
        under_quota = count * total_weight < (n + 1) * weight
        return (0 if under_quota else 1, (count + 1) / weight, round_robin_key(member, tiebreak))

    return sorted(members, key=key)


# below this, distinct ratios of integers stay distinct (and ordered) as floats
_EXACT_RATIO_LIMIT = 1 << 24


def _integer_weights(members: Sequence[MemberSnapshot], n: int) -> dict[int, int] | None:
    """The weights times one common factor (the least common denominator), so that every
    weight is an integer and the quota arithmetic exact without fractions; None when the
    integers are too large for the float ratios of ``_rank_weighted_integers`` to be exact."""
    ratios = [(m.id, *m.weight.as_integer_ratio()) for m in members]
    factor = math.lcm(*(d for _, _, d in ratios)) if ratios else 1
    scaled = {mid: num * (factor // den) for mid, num, den in ratios}
    if n + 1 >= _EXACT_RATIO_LIMIT or any(w >= _EXACT_RATIO_LIMIT for w in scaled.values()):
        return None
    return scaled


def _rank_weighted_integers(
    members: Sequence[MemberSnapshot],
    tiebreak: Mapping[int, float],
    received: Mapping[int, int],
    weights: Mapping[int, int],
    n: int,
    catch_up: bool,
) -> list[MemberSnapshot]:
    """``rank_weighted`` with the weights scaled to integers by one common factor: the same
    order (the factor cancels out of every comparison), in integer arithmetic. The ratio
    (count + 1) / weight is compared as a float: numerator and denominator are below 2**24,
    so two different ratios differ by far more than a float's rounding and equal ones round
    alike."""
    total_weight = sum(weights.values())

    def key(member: MemberSnapshot) -> tuple[int, float, RoundRobinKey]:
        weight = weights[member.id]
        count = received.get(member.id, 0)
        if not catch_up:
            count = max(count, n * weight // total_weight)
        under_quota = count * total_weight < (n + 1) * weight
        return (0 if under_quota else 1, (count + 1) / weight, round_robin_key(member, tiebreak))

    return sorted(members, key=key)


def rank(
    strategy: str,
    members: Sequence[MemberSnapshot],
    *,
    tiebreak: Mapping[int, float],
    received: Mapping[int, int] | None = None,
    catch_up: bool = False,
) -> list[MemberSnapshot]:
    """Order eligible members for a push strategy (broadcast uses round-robin order)."""
    if strategy == "load_balanced":
        return rank_load_balanced(members, tiebreak)
    if strategy == "performance":
        return rank_performance(members, tiebreak)
    if strategy == "weighted":
        return rank_weighted(members, tiebreak, received or {}, catch_up=catch_up)
    return rank_round_robin(members, tiebreak)
