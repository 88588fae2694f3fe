"""Member eligibility: one reason code per rejected member, checked in a fixed order.

Order: ``member_inactive``, ``agent_inactive``, ``unavailable``, ``filter_mismatch`` (the
member's own lead filters), ``outside_hours`` / ``on_holiday`` (the agent's own schedule,
when the rule requires it), ``cap_reached`` (member caps over rule defaults, scaled by the
rule's performance tiers), ``already_offered`` (offered this lead in an earlier round, or
declined it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from distribution.engine.caps import (
    count_received,
    scaled_cap,
    tier_multiplier,
    window_starts,
)
from distribution.engine.filters import match_filters
from distribution.engine.schedule import is_holiday, is_open, to_utc
from distribution.engine.types import (
    AGENT_INACTIVE,
    ALREADY_OFFERED,
    CAP_REACHED,
    FILTER_MISMATCH,
    MEMBER_INACTIVE,
    ON_HOLIDAY,
    OUTSIDE_HOURS,
    UNAVAILABLE,
    AgentSnapshot,
    Candidate,
    Caps,
    LeadSnapshot,
    MemberSnapshot,
    ReceivedCounts,
    RuleSnapshot,
    ScheduleSnapshot,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of one eligibility check: no reason means eligible."""

    reason: str | None = None
    detail: str = ""

    @property
    def eligible(self) -> bool:
        """True when nothing rejected the member."""
        return self.reason is None


@dataclass(frozen=True, slots=True)
class Eligibility:
    """A pool split into eligible members and rejected candidates."""

    eligible: list[MemberSnapshot]
    rejected: list[Candidate]
    counts: dict[int, ReceivedCounts] = field(default_factory=dict)  # member id → window counts


class Checker:
    """Eligibility checks for one rule at one moment, sharing per-decision work.

    Window starts are computed once per pool, and schedule answers once per distinct
    schedule, so checking a pool of n members costs O(n).
    """

    def __init__(
        self, rule: RuleSnapshot, now: datetime, *, hours_at: datetime | None = None
    ) -> None:
        self.rule = rule
        self.now = to_utc(now)
        # Under after_hours=offer_now the lead will be worked at the rule's opening, so the
        # agents' own hours are judged then.
        self.hours_at = to_utc(hours_at) if hours_at is not None else self.now
        self._starts: dict[str, datetime] | None = None
        self._hours: dict[ScheduleSnapshot, str | None] = {}
        # merged caps per distinct member caps: most members share a few cap settings
        self._caps: dict[Caps, tuple[tuple[str, int], ...]] = {}
        self._multiplier: float | None = None if rule.tiers else 1.0

    @property
    def starts(self) -> dict[str, datetime]:
        """Window starts, computed on first use: pre-counted members never need them."""
        if self._starts is None:
            self._starts = window_starts(self.now, self.rule.cap_timezone)
        return self._starts

    def counts(self, member: MemberSnapshot) -> ReceivedCounts:
        """Leads the member received in each current window (pre-counted or counted here)."""
        if member.received_counts is not None:
            return member.received_counts
        return count_received(member.received_at, self.starts)

    def _cap_items(self, caps: Caps) -> tuple[tuple[str, int], ...]:
        items = self._caps.get(caps)
        if items is None:
            items = tuple(caps.merged_over(self.rule.caps).items())
            self._caps[caps] = items
        return items

    def _hours_reason(self, schedule: ScheduleSnapshot | None) -> str | None:
        if schedule is None or not self.rule.require_agent_hours:
            return None
        if schedule not in self._hours:
            reason: str | None = None
            if not is_open(schedule, self.hours_at):
                reason = ON_HOLIDAY if is_holiday(schedule, self.hours_at) else OUTSIDE_HOURS
            self._hours[schedule] = reason
        return self._hours[schedule]

    def check_agent(self, agent: AgentSnapshot) -> Verdict:
        """Agent-level checks only: active, available, inside the agent's own hours."""
        if not agent.active:
            return Verdict(AGENT_INACTIVE, "agent account is inactive")
        if not agent.available:
            return Verdict(UNAVAILABLE, "agent is away / opted out")
        hours = self._hours_reason(agent.schedule)
        if hours is not None:
            when = self.hours_at.isoformat()
            text = "holiday" if hours == ON_HOLIDAY else "outside working hours"
            return Verdict(hours, f"agent schedule: {text} at {when}")
        return Verdict()

    def check_member(
        self,
        member: MemberSnapshot,
        lead: LeadSnapshot,
        *,
        offered: frozenset[int] = frozenset(),
        counts: ReceivedCounts | None = None,
    ) -> Verdict:
        """Every member check, in order; the first failure is the member's reason."""
        if not member.active:
            return Verdict(MEMBER_INACTIVE, "pool membership is inactive")
        agent = member.agent
        if not agent.active:
            return Verdict(AGENT_INACTIVE, "agent account is inactive")
        if not agent.available:
            return Verdict(UNAVAILABLE, "agent is away / opted out")
        if member.filters:
            ok, failed = match_filters(member.filters, lead)
            if not ok:
                return Verdict(FILTER_MISMATCH, "; ".join(failed))
        agent_verdict = self.check_agent(agent)
        if not agent_verdict.eligible:
            return agent_verdict
        cap_items = self._cap_items(member.caps)
        if cap_items:
            # without tiers the multiplier is 1 for everyone: no per-member product
            multiplier = (
                self._multiplier
                if self._multiplier is not None
                else tier_multiplier(self.rule.tiers, agent.metrics)
            )
            used = counts if counts is not None else self.counts(member)
            # the first exhausted cap, as binding_cap finds it
            for period, cap in cap_items:
                limit = cap if multiplier == 1.0 else scaled_cap(cap, multiplier)
                received = used.get(period)
                if received >= limit:
                    scaled = f" (scaled ×{multiplier:g})" if multiplier != 1.0 else ""
                    return Verdict(
                        CAP_REACHED, f"{period} cap {limit}{scaled} reached: {received} received"
                    )
        if member.id in offered:
            return Verdict(ALREADY_OFFERED, "already offered this lead (or declined it)")
        return Verdict()

    def evaluate(
        self,
        members: Iterable[MemberSnapshot],
        lead: LeadSnapshot,
        *,
        offered: frozenset[int] = frozenset(),
    ) -> Eligibility:
        """Split members into eligible ones and rejected candidates with their reasons."""
        eligible: list[MemberSnapshot] = []
        rejected: list[Candidate] = []
        counts: dict[int, ReceivedCounts] = {}
        for member in members:
            member_counts = self.counts(member)
            verdict = self.check_member(member, lead, offered=offered, counts=member_counts)
            if verdict.eligible:
                eligible.append(member)
                counts[member.id] = member_counts
            else:
                rejected.append(
                    Candidate(
                        agent_id=member.agent.id,
                        email=member.agent.email,
                        member_id=member.id,
                        reason=verdict.reason,
                        detail=verdict.detail,
                    )
                )
        return Eligibility(eligible, rejected, counts)


def check_member(
    member: MemberSnapshot,
    rule: RuleSnapshot,
    lead: LeadSnapshot,
    now: datetime,
    *,
    offered: frozenset[int] = frozenset(),
    hours_at: datetime | None = None,
) -> Verdict:
    """Whether one member may receive the lead now (also for claim and hopper-pick checks)."""
    return Checker(rule, now, hours_at=hours_at).check_member(member, lead, offered=offered)


def check_agent(
    agent: AgentSnapshot,
    rule: RuleSnapshot,
    now: datetime,
    *,
    hours_at: datetime | None = None,
) -> Verdict:
    """Whether an agent outside the pool (default or direct target) may receive the lead."""
    return Checker(rule, now, hours_at=hours_at).check_agent(agent)


def evaluate_members(
    members: Sequence[MemberSnapshot],
    rule: RuleSnapshot,
    lead: LeadSnapshot,
    now: datetime,
    *,
    offered: frozenset[int] = frozenset(),
    hours_at: datetime | None = None,
) -> Eligibility:
    """Eligibility of a whole pool for one lead."""
    return Checker(rule, now, hours_at=hours_at).evaluate(members, lead, offered=offered)
