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
    return (
        0 if last is None else 1,
        _NEVER if last is None else to_utc(last),
        member.position,
        tiebreak.get(member.id, 0.0),
    )


def rank_round_robin(
    members: Sequence[MemberSnapshot], tiebreak: Mapping[int, float]
) -> list[MemberSnapshot]:
    """The member whose last turn is oldest comes first (never-assigned before all)."""
    return sorted(members, key=lambda m: round_robin_key(m, tiebreak))


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
    weights = {m.id: Fraction(m.weight) for m in members}
    total_weight = sum(weights.values(), Fraction(0))
    n = sum(received.get(m.id, 0) for m in members)

    def key(member: MemberSnapshot) -> tuple[int, Fraction, RoundRobinKey]:
        weight = weights[member.id]
        count = received.get(member.id, 0)
        if not catch_up:
            count = max(count, math.floor(n * weight / total_weight))
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
