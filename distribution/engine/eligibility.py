"""Member eligibility: one reason code per rejected member, checked in a fixed order.

Order: ``member_inactive``, ``agent_inactive``, ``unavailable``, ``filter_mismatch`` (the
member's own lead filters), ``outside_hours`` / ``on_holiday`` (the agent's own schedule,
when the rule requires it), ``cap_reached`` (member caps over rule defaults, scaled by the
rule's performance tiers), ``pool_cap_reached`` (the pool as a whole received its cap in
a window), ``already_offered`` (offered this lead in an earlier round, or declined it).
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
    POOL_CAP_REACHED,
    UNAVAILABLE,
    AgentSnapshot,
    Candidate,
    Caps,
    LeadSnapshot,
    MemberSnapshot,
    PoolUsage,
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


# the verdicts without variable detail, shared (a Verdict is immutable)
ELIGIBLE = Verdict()
_MEMBER_INACTIVE = Verdict(MEMBER_INACTIVE, "pool membership is inactive")
_AGENT_INACTIVE = Verdict(AGENT_INACTIVE, "agent account is inactive")
_UNAVAILABLE = Verdict(UNAVAILABLE, "agent is away / opted out")
_ALREADY_OFFERED = Verdict(ALREADY_OFFERED, "already offered this lead (or declined it)")


def pool_verdict(pool: PoolUsage | None) -> Verdict | None:
    """``pool_cap_reached`` when the pool received one of its own caps, else None."""
    if pool is None:
        return None
    binding = pool.binding()
    if binding is None:
        return None
    period, cap, received = binding
    return Verdict(POOL_CAP_REACHED, f"pool {period} cap {cap} reached: {received} received")


@dataclass(frozen=True, slots=True)
class _MemberChecks:
    """The checks of one member that do not depend on the lead, as a Checker keeps them."""

    member: MemberSnapshot  # kept, so that its id is not reused while this is cached
    counts: ReceivedCounts
    before: Candidate | None  # rejected before the lead filters (inactive, away)
    after: Candidate | None  # rejected after them (agent hours, caps)


class Checker:
    """Eligibility checks for one rule at one moment, sharing per-decision work.

    Window starts are computed once per pool, and schedule answers once per distinct
    schedule, so checking a pool of n members costs O(n). The checks of a member that do
    not depend on the lead are kept per member snapshot (snapshots are immutable: a member
    given a lead is a new snapshot), so a Checker reused for the next lead (``Checkers``)
    only runs the member's lead filters and the already-offered test again.
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
        self._hours_by_id: dict[int, tuple[ScheduleSnapshot, str | None]] = {}
        # merged caps per distinct member caps: most members share a few cap settings
        self._caps: dict[Caps, tuple[tuple[str, int], ...]] = {}
        # the same per Caps object (a pool's members are checked lead after lead): the
        # object is kept in the value, so its id cannot be reused while cached
        self._caps_by_id: dict[int, tuple[Caps, tuple[tuple[str, int], ...]]] = {}
        self._multiplier: float | None = None if rule.tiers else 1.0
        self._members: dict[int, _MemberChecks] = {}  # by id(member)

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
        known = self._caps_by_id.get(id(caps))
        if known is not None and known[0] is caps:
            return known[1]
        items = self._caps.get(caps)
        if items is None:
            items = tuple(caps.merged_over(self.rule.caps).items())
            self._caps[caps] = items
        self._caps_by_id[id(caps)] = (caps, items)
        return items

    def _hours_reason(self, schedule: ScheduleSnapshot | None) -> str | None:
        if schedule is None or not self.rule.require_agent_hours:
            return None
        known = self._hours_by_id.get(id(schedule))
        if known is not None and known[0] is schedule:
            return known[1]
        if schedule not in self._hours:
            reason: str | None = None
            if not is_open(schedule, self.hours_at):
                reason = ON_HOLIDAY if is_holiday(schedule, self.hours_at) else OUTSIDE_HOURS
            self._hours[schedule] = reason
        self._hours_by_id[id(schedule)] = (schedule, self._hours[schedule])
        return self._hours[schedule]

    def check_agent(self, agent: AgentSnapshot) -> Verdict:
        """Agent-level checks only: active, available, inside the agent's own hours."""
        if not agent.active:
            return _AGENT_INACTIVE
        if not agent.available:
            return _UNAVAILABLE
        return self._hours_verdict(agent.schedule)

    def _hours_verdict(self, schedule: ScheduleSnapshot | None) -> Verdict:
        hours = self._hours_reason(schedule)
        if hours is not None:
            when = self.hours_at.isoformat()
            text = "holiday" if hours == ON_HOLIDAY else "outside working hours"
            return Verdict(hours, f"agent schedule: {text} at {when}")
        return ELIGIBLE

    def check_member(
        self,
        member: MemberSnapshot,
        lead: LeadSnapshot,
        *,
        offered: frozenset[int] = frozenset(),
        counts: ReceivedCounts | None = None,
        pool: PoolUsage | None = None,
    ) -> Verdict:
        """Every member check, in order; the first failure is the member's reason. POOL:
        the pool's own caps and counts (None: the pool has no caps)."""
        before = self._before_filters(member)
        if before is not None:
            return before
        if member.filters:
            ok, failed = match_filters(member.filters, lead)
            if not ok:
                return Verdict(FILTER_MISMATCH, "; ".join(failed))
        after = self._after_filters(member, counts if counts is not None else self.counts(member))
        if after is not None:
            return after
        full = pool_verdict(pool)
        if full is not None:
            return full
        if offered and member.id in offered:
            return _ALREADY_OFFERED
        return ELIGIBLE

    def _before_filters(self, member: MemberSnapshot) -> Verdict | None:
        """The checks before the member's lead filters: membership, account, availability."""
        if not member.active:
            return _MEMBER_INACTIVE
        agent = member.agent
        if not agent.active:
            return _AGENT_INACTIVE
        if not agent.available:
            return _UNAVAILABLE
        return None

    def _after_filters(self, member: MemberSnapshot, used: ReceivedCounts) -> Verdict | None:
        """The checks after the member's lead filters but the last: hours, then caps."""
        agent = member.agent
        if agent.schedule is not None and self.rule.require_agent_hours:
            agent_verdict = self._hours_verdict(agent.schedule)
            if agent_verdict.reason is not None:
                return agent_verdict
        cap_items = self._cap_items(member.caps)
        if cap_items:
            # without tiers the multiplier is 1 for everyone: no per-member product
            multiplier = (
                self._multiplier
                if self._multiplier is not None
                else tier_multiplier(self.rule.tiers, agent.metrics)
            )
            # the first exhausted cap, as binding_cap finds it
            for period, cap in cap_items:
                limit = cap if multiplier == 1.0 else scaled_cap(cap, multiplier)
                received: int = getattr(used, period)
                if received >= limit:
                    scaled = f" (scaled ×{multiplier:g})" if multiplier != 1.0 else ""
                    return Verdict(
                        CAP_REACHED, f"{period} cap {limit}{scaled} reached: {received} received"
                    )
        return None

    def _member_checks(self, member: MemberSnapshot) -> _MemberChecks:
        """The lead-independent checks of MEMBER, computed once per member snapshot."""
        known = self._members.get(id(member))
        if known is not None and known.member is member:
            return known
        counts = self.counts(member)
        before = self._before_filters(member)
        after = self._after_filters(member, counts) if before is None else None
        checks = _MemberChecks(
            member,
            counts,
            _rejected(member, before) if before is not None else None,
            _rejected(member, after) if after is not None else None,
        )
        self._members[id(member)] = checks
        return checks

    def evaluate(
        self,
        members: Iterable[MemberSnapshot],
        lead: LeadSnapshot,
        *,
        offered: frozenset[int] = frozenset(),
        pool: PoolUsage | None = None,
    ) -> Eligibility:
        """Split members into eligible ones and rejected candidates with their reasons
        (POOL: the pool's own caps and counts; when one is reached, every member otherwise
        eligible is rejected with ``pool_cap_reached``)."""
        eligible: list[MemberSnapshot] = []
        rejected: list[Candidate] = []
        counts: dict[int, ReceivedCounts] = {}
        known = self._members
        full = pool_verdict(pool)
        for member in members:
            checks = known.get(id(member))
            if checks is None or checks.member is not member:
                checks = self._member_checks(member)
            if checks.before is not None:
                rejected.append(checks.before)
                continue
            if member.filters:
                ok, failed = match_filters(member.filters, lead)
                if not ok:
                    rejected.append(_rejected(member, Verdict(FILTER_MISMATCH, "; ".join(failed))))
                    continue
            if checks.after is not None:
                rejected.append(checks.after)
            elif full is not None:
                rejected.append(_rejected(member, full))
            elif offered and member.id in offered:
                rejected.append(_rejected(member, _ALREADY_OFFERED))
            else:
                eligible.append(member)
                counts[member.id] = checks.counts
        return Eligibility(eligible, rejected, counts)


def _rejected(member: MemberSnapshot, verdict: Verdict) -> Candidate:
    agent = member.agent
    return Candidate(agent.id, agent.email, member.id, None, verdict.reason, verdict.detail)


class Checkers:
    """The Checkers of decisions made at one moment, reused from lead to lead (a batch):
    one per rule and hours instant, so what a Checker keeps is computed once per batch."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[int, datetime, datetime | None], Checker] = {}

    def get(
        self, rule: RuleSnapshot, now: datetime, *, hours_at: datetime | None = None
    ) -> Checker:
        """The Checker of RULE at NOW (agents' hours judged at HOURS_AT), made once."""
        key = (id(rule), now, hours_at)
        checker = self._by_key.get(key)
        # the Checker keeps its rule: while cached, the id is not another rule's
        if checker is None or checker.rule is not rule:
            checker = self._by_key[key] = Checker(rule, now, hours_at=hours_at)
        return checker


def check_member(
    member: MemberSnapshot,
    rule: RuleSnapshot,
    lead: LeadSnapshot,
    now: datetime,
    *,
    offered: frozenset[int] = frozenset(),
    hours_at: datetime | None = None,
    pool: PoolUsage | None = None,
) -> Verdict:
    """Whether one member may receive the lead now (also for claim and hopper-pick checks)."""
    return Checker(rule, now, hours_at=hours_at).check_member(
        member, lead, offered=offered, pool=pool
    )


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
    pool: PoolUsage | None = None,
) -> Eligibility:
    """Eligibility of a whole pool for one lead."""
    return Checker(rule, now, hours_at=hours_at).evaluate(members, lead, offered=offered, pool=pool)
