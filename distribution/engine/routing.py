"""Agent routing: which rule takes a lead, and what that rule does with it.

Entry points for the services layer:

* ``route_lead`` — match the rules, then ``decide`` with the winning rule's pool.
* ``match_rule`` / ``decide`` — the same in two steps, so that only the matched pool is
  loaded.
* ``next_round`` — after an offer round ended unclaimed (expired, or every offer declined).
* ``choose_pull`` — the lead a "Get lead" press receives.
* ``turn_timestamp`` — the ``last_turn_at`` to stamp on an assignment.

Every function is pure: time is the ``now`` argument, randomness the ``rng`` argument (by
default seeded from the lead id, so a decision is reproducible), and every ``Decision``
carries its explanation.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from distribution.engine.eligibility import Checker, Checkers, Eligibility, Verdict
from distribution.engine.filters import match_filters
from distribution.engine.schedule import add_open_time, has_open_time, is_open, next_open, to_utc
from distribution.engine.strategies import draw_tiebreaks, rank
from distribution.engine.types import (
    AFTER_HOURS_HOLD,
    AFTER_HOURS_UNASSIGNED,
    ALLOTMENT_REACHED,
    ASSIGNED,
    CAMPAIGN_MISMATCH,
    DIRECT_NO_TARGET,
    DIRECT_TARGET_INELIGIBLE,
    DIRECT_UNKNOWN_TARGET,
    FILTER_MISMATCH,
    MAX_ROUNDS_REACHED,
    NO_ELIGIBLE_MEMBER,
    NO_RULE_MATCHED,
    NOT_MEMBER,
    NOTHING_TO_PULL,
    OFFERED,
    OUTSIDE_HOURS,
    PUSH_STRATEGIES,
    RULE_DISABLED,
    RULE_FILTER_MISMATCH,
    SCHEDULE_NEVER_OPEN,
    SOURCE_MISMATCH,
    STRATEGY_MANUAL,
    STRATEGY_NONE,
    WAIT_HOPPER,
    WAIT_PULL,
    AgentSnapshot,
    Candidate,
    Decision,
    LeadSnapshot,
    MemberSnapshot,
    Outcome,
    PoolUsage,
    PullDecision,
    RuleMatch,
    RuleSnapshot,
    RuleTrial,
)

_ONE_MICROSECOND = timedelta(microseconds=1)


# --- rule matching ------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _folded(values: frozenset[str]) -> frozenset[str]:
    """The values casefolded (a rule's sources, once for every lead matched against it)."""
    return frozenset(v.casefold() for v in values)


@functools.lru_cache(maxsize=1024)
def _listed(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _slug_mismatch(rule: RuleSnapshot, lead: LeadSnapshot) -> tuple[str, str] | None:
    """Why a rule's sources or campaign do not match the lead, or None if they do."""
    if rule.sources and (lead.source or "").casefold() not in _folded(rule.sources):
        return SOURCE_MISMATCH, f"source {lead.source!r} not in [{_listed(rule.sources)}]"
    if rule.campaign is not None and (lead.campaign or "").casefold() != rule.campaign.casefold():
        return CAMPAIGN_MISMATCH, f"campaign {lead.campaign!r} is not {rule.campaign!r}"
    return None


def rule_mismatch(rule: RuleSnapshot, lead: LeadSnapshot) -> tuple[str, str] | None:
    """Why a rule's sources, campaign or filters do not match the lead, or None if they do."""
    mismatch = _slug_mismatch(rule, lead)
    if mismatch is not None:
        return mismatch
    ok, failed = match_filters(rule.filters, lead)
    if not ok:
        return RULE_FILTER_MISMATCH, "; ".join(failed)
    return None


def rule_order(rules: Iterable[RuleSnapshot]) -> list[RuleSnapshot]:
    """The rules in the order they are tried: priority ascending, then name."""
    return sorted(rules, key=lambda r: (r.priority, r.name.casefold(), r.name, r.id))


def match_rule(
    lead: LeadSnapshot, rules: Iterable[RuleSnapshot], *, ordered: bool = False
) -> RuleMatch:
    """The first enabled rule (priority ascending, then name) matching the lead, and the tries.

    Disabled rules are listed as tried with ``rule_disabled`` so that a manager sees them.
    ``ordered``: the rules come in ``rule_order`` already (sorted once for many leads).
    """
    tried: list[RuleTrial] = []
    for rule in rules if ordered else rule_order(rules):
        before = _trial_before_filters(rule, lead)
        if before is not None:
            tried.append(before)
            continue
        ok, failed = match_filters(rule.filters, lead)
        if ok:
            tried.append(RuleTrial(rule.id, rule.name, True))
            return RuleMatch(rule, tuple(tried))
        tried.append(RuleTrial(rule.id, rule.name, False, RULE_FILTER_MISMATCH, "; ".join(failed)))
    return RuleMatch(None, tuple(tried))


# The trial of a rule that is disabled, or whose sources or campaign reject a lead, depends
# on the rule and the lead's source and campaign only: made once per such triple (most rules
# tried for a lead are of this kind). The rule is kept in the value, so that its id is not
# reused while cached; emptied when it grows past its limit.
_TRIALS: dict[tuple[int, str | None, str | None], tuple[RuleSnapshot, RuleTrial | None]] = {}
_TRIALS_LIMIT = 20_000


def _trial_before_filters(rule: RuleSnapshot, lead: LeadSnapshot) -> RuleTrial | None:
    """The rule's trial when it is disabled or its sources or campaign do not match the
    lead; None when its filters decide."""
    key = (id(rule), lead.source, lead.campaign)
    known = _TRIALS.get(key)
    if known is not None and known[0] is rule:
        return known[1]
    trial: RuleTrial | None = None
    if not rule.enabled:
        trial = RuleTrial(rule.id, rule.name, False, RULE_DISABLED, "rule is disabled")
    elif (mismatch := _slug_mismatch(rule, lead)) is not None:
        trial = RuleTrial(rule.id, rule.name, False, *mismatch)
    if len(_TRIALS) >= _TRIALS_LIMIT:
        _TRIALS.clear()
    _TRIALS[key] = (rule, trial)
    return trial


# --- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    rule: RuleSnapshot
    lead: LeadSnapshot
    members: Sequence[MemberSnapshot]
    now: datetime
    rules_tried: tuple[RuleTrial, ...]
    round_no: int
    offered: frozenset[int]
    directory: Sequence[AgentSnapshot]
    rng: random.Random
    checkers: Checkers | None = None
    pool: PoolUsage | None = None  # the pool's own caps and counts (None: no pool caps)

    @classmethod
    def of(
        cls,
        rule: RuleSnapshot,
        lead: LeadSnapshot,
        members: Sequence[MemberSnapshot],
        now: datetime,
        rules_tried: tuple[RuleTrial, ...],
        round_no: int,
        offered: frozenset[int],
        directory: Sequence[AgentSnapshot],
        rng: random.Random | None,
        checkers: Checkers | None,
        pool: PoolUsage | None = None,
    ) -> _Context:
        """One decision's context: ``now`` in UTC, the lead's own Random unless one is given."""
        rng = rng if rng is not None else _lead_rng(lead)
        return cls(
            rule,
            lead,
            members,
            to_utc(now),
            rules_tried,
            round_no,
            offered,
            directory,
            rng,
            checkers,
            pool,
        )

    def checker(self, hours_at: datetime | None = None) -> Checker:
        """The rule's Checker now: a new one, or the batch's (``checkers``)."""
        if self.checkers is None:
            return Checker(self.rule, self.now, hours_at=hours_at)
        return self.checkers.get(self.rule, self.now, hours_at=hours_at)

    def decision(
        self,
        outcome: Outcome,
        code: str,
        reason: str,
        *,
        chosen: tuple[Candidate, ...] = (),
        candidates: Sequence[Candidate] = (),
        expires_at: datetime | None = None,
        hold_until: datetime | None = None,
        offered: frozenset[int] | None = None,
        used_default_agent: bool = False,
        default_candidate: Candidate | None = None,
    ) -> Decision:
        return Decision(
            outcome=outcome,
            reason_code=code,
            reason=f"Rule {self.rule.name!r} ({self.rule.strategy}): {reason}",
            rule_id=self.rule.id,
            rule_name=self.rule.name,
            rules_tried=self.rules_tried,
            chosen=chosen,
            candidates=tuple(candidates),
            expires_at=expires_at,
            hold_until=hold_until,
            round_no=self.round_no,
            offered_member_ids=self.offered if offered is None else offered,
            used_default_agent=used_default_agent,
            default_candidate=default_candidate,
        )


def _lead_rng(lead: LeadSnapshot) -> random.Random:
    # Seeding with text is stable across processes (unlike hash()): same lead, same draws.
    return random.Random(f"lead:{lead.id}")


def _summary(rejected: Sequence[Candidate]) -> str:
    if not rejected:
        return "the pool is empty"
    counts = Counter(c.reason for c in rejected)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


# Candidate is a frozen dataclass with slots: its __init__ sets each slot through
# object.__setattr__. A candidate is made for every eligible member of every decision, so
# _candidate sets the slots through their descriptors instead (half the cost); the result
# is the same Candidate.
_new_object = object.__new__
_SET_SLOTS = tuple(
    getattr(Candidate, name).__set__
    for name in ("agent_id", "email", "member_id", "rank", "reason", "detail")
)


def _candidate(member: MemberSnapshot, position: int | None = None) -> Candidate:
    """An eligible member as a candidate, ranked ``position`` (None: not ranked)."""
    agent = member.agent
    candidate: Candidate = _new_object(Candidate)
    set_id, set_email, set_member, set_rank, set_reason, set_detail = _SET_SLOTS
    set_id(candidate, agent.id)
    set_email(candidate, agent.email)
    set_member(candidate, member.id)
    set_rank(candidate, position)
    set_reason(candidate, None)
    set_detail(candidate, "")
    return candidate


def _fallback(
    ctx: _Context,
    checker: Checker,
    code: str,
    why: str,
    candidates: Sequence[Candidate],
) -> Decision:
    """No one took the lead: the default agent if set and eligible, else the exception queue.

    1. No default agent → exception with ``why``.
    2. The default agent is checked as a member when in the pool (filters, caps, hours —
       not ``already_offered``: the fallback assigns rather than offers), else as an agent.
    3. Eligible → assign to them; not eligible → exception, with both reasons.
    """
    default = ctx.rule.default_agent
    if default is None:
        return ctx.decision("exception", code, f"{why}; no default agent", candidates=candidates)
    member = next((m for m in ctx.members if m.agent.id == default.id), None)
    if member is not None:
        verdict = checker.check_member(member, ctx.lead, pool=ctx.pool)
    else:
        verdict = checker.check_agent(default)
    candidate = Candidate(
        agent_id=default.id,
        email=default.email,
        member_id=member.id if member is not None else None,
        rank=1 if verdict.eligible else None,
        reason=verdict.reason,
        detail=verdict.detail or "default agent",
    )
    if verdict.eligible:
        return ctx.decision(
            "assign",
            code,
            f"{why}; assigned to default agent {default.email}",
            chosen=(candidate,),
            candidates=candidates,
            used_default_agent=True,
            default_candidate=candidate,
        )
    return ctx.decision(
        "exception",
        code,
        f"{why}; default agent {default.email} not eligible ({verdict.reason}: {verdict.detail})",
        candidates=candidates,
        default_candidate=candidate,
    )


def _find_target(
    ctx: _Context, user_id: int | None, email: str | None
) -> tuple[MemberSnapshot | None, AgentSnapshot | None]:
    """The agent a direct lead names, and their membership of the rule's pool if any.

    The user id is tried first: it stays unique where e-mail addresses get recycled.
    """
    keys: list[tuple[str, int | str]] = []
    if user_id is not None:
        keys.append(("id", user_id))
    if email is not None:
        keys.append(("email", email))
    for kind, key in keys:
        for member in ctx.members:
            if _names(member.agent, kind, key):
                return member, member.agent
        for agent in ctx.directory:
            if _names(agent, kind, key):
                return None, agent
    return None, None


def _names(agent: AgentSnapshot, kind: str, key: int | str) -> bool:
    return agent.id == key if kind == "id" else agent.email.casefold() == key


def _direct(ctx: _Context, checker: Checker) -> Decision:
    """Assign to the agent the lead names; unknown → prospect; ineligible → fallback."""
    email, user_id = ctx.lead.assign_to_email, ctx.lead.assign_to_user_id
    if email is None and user_id is None:
        return ctx.decision(
            "prospect", DIRECT_NO_TARGET, "neither assign_to_email nor assign_to_user_id given"
        )
    member, agent = _find_target(ctx, user_id, email)
    if agent is None:
        named = f"user id {user_id}" if user_id is not None else f"e-mail {email!r}"
        return ctx.decision("prospect", DIRECT_UNKNOWN_TARGET, f"no agent with {named}")
    verdict = (
        checker.check_member(member, ctx.lead, pool=ctx.pool)
        if member is not None
        else checker.check_agent(agent)
    )
    candidate = Candidate(
        agent_id=agent.id,
        email=agent.email,
        member_id=member.id if member is not None else None,
        rank=1 if verdict.eligible else None,
        reason=verdict.reason,
        detail=verdict.detail,
    )
    if verdict.eligible:
        return ctx.decision(
            "assign",
            ASSIGNED,
            f"assigned directly to {agent.email}",
            chosen=(candidate,),
            candidates=(candidate,),
        )
    why = f"named agent {agent.email} not eligible ({verdict.reason})"
    return _fallback(ctx, checker, DIRECT_TARGET_INELIGIBLE, why, (candidate,))


def _ranked_candidates(ranked: Sequence[MemberSnapshot], elig: Eligibility) -> list[Candidate]:
    return [_candidate(m, i) for i, m in enumerate(ranked, start=1)] + elig.rejected


def _push(ctx: _Context, checker: Checker) -> Decision:
    """Rank the eligible members and assign to, or offer to, the first (or a batch)."""
    rule = ctx.rule
    elig = checker.evaluate(ctx.members, ctx.lead, offered=ctx.offered, pool=ctx.pool)
    if not elig.eligible:
        why = f"no eligible member ({_summary(elig.rejected)})"
        return _fallback(ctx, checker, NO_ELIGIBLE_MEMBER, why, elig.rejected)
    received: dict[int, int] = {}
    if rule.strategy == "weighted":  # the only strategy that compares received leads
        period = rule.share_period
        received = {m.id: elig.counts[m.id].get(period) for m in elig.eligible}
    ranked = rank(
        rule.strategy,
        elig.eligible,
        tiebreak=draw_tiebreaks(elig.eligible, ctx.rng),
        received=received,
        catch_up=rule.catch_up,
    )
    candidates = _ranked_candidates(ranked, elig)
    size = (rule.batch_size or len(ranked)) if rule.strategy == "broadcast" else 1
    chosen = tuple(candidates[: min(size, len(ranked))])  # ranked ones lead the list
    shown = ", ".join(c.email for c in chosen)
    if rule.strategy != "broadcast" and rule.claim_timeout is None:
        return ctx.decision(
            "assign",
            ASSIGNED,
            f"assigned to {shown} (1st of {len(ranked)} eligible)",
            chosen=chosen,
            candidates=candidates,
        )
    expires_at = (
        add_open_time(rule.schedule, ctx.now, rule.claim_timeout)
        if rule.claim_timeout is not None
        else None
    )
    until = f" until {expires_at.isoformat()}" if expires_at is not None else ""
    return ctx.decision(
        "offer",
        OFFERED,
        f"round {ctx.round_no}: offered to {shown}{until}",
        chosen=chosen,
        candidates=candidates,
        expires_at=expires_at,
        offered=ctx.offered | {c.member_id for c in chosen if c.member_id is not None},
    )


def decide(
    rule: RuleSnapshot,
    lead: LeadSnapshot,
    members: Sequence[MemberSnapshot],
    now: datetime,
    *,
    rules_tried: tuple[RuleTrial, ...] = (),
    round_no: int = 1,
    offered: frozenset[int] = frozenset(),
    directory: Sequence[AgentSnapshot] = (),
    rng: random.Random | None = None,
    checkers: Checkers | None = None,
    pool: PoolUsage | None = None,
) -> Decision:
    """What ``rule`` does with ``lead`` now, given the rule's pool ``members``.

    1. ``none`` → prospect; ``manual`` → the Lead Assignment queue.
    2. ``pull`` / ``hopper`` → the lead waits; candidates show who could take it.
    3. Push strategies while the rule's schedule is closed: ``hold`` until it opens,
       ``unassigned`` to the queue, or ``offer_now`` (agents' hours judged at the opening,
       the claim timer starting then).
    4. ``direct`` → the named agent, else prospect / default agent / exception.
    5. Otherwise: eligible members (excluding ``offered``) ranked by the strategy; assign to
       the first, or offer (claim timeout, or broadcast to all / ``batch_size``). Nobody
       eligible → default agent if eligible, else exception.
    ``directory`` holds agents outside the pool that ``direct`` may name (the services
    layer loads just the ones the lead's assign_to fields refer to). ``checkers``: the
    Checkers of a batch decided at one ``now``, reused from lead to lead (same decisions).
    ``pool``: the pool's own caps and the leads it received in their windows; a reached pool
    cap rejects every otherwise eligible member with ``pool_cap_reached``.
    A schedule or after-hours policy the rule inherits from the organisation
    (``schedule_origin`` / ``after_hours_origin``) is named in the explanation.
    """
    ctx = _Context.of(
        rule, lead, members, now, rules_tried, round_no, offered, directory, rng, checkers, pool
    )
    if rule.strategy == "none":
        return ctx.decision("prospect", STRATEGY_NONE, "stored as a prospect, nobody assigned")
    if rule.strategy == "manual":
        return ctx.decision(
            "queue_unassigned", STRATEGY_MANUAL, "sent to the Lead Assignment queue"
        )
    if rule.strategy in ("pull", "hopper"):
        elig = ctx.checker().evaluate(members, lead, pool=pool)
        waiting = [_candidate(m) for m in elig.eligible] + elig.rejected
        takers = f"{len(elig.eligible)} member(s) may take it"
        if rule.strategy == "pull":
            text = f"waits for a Get lead press; {takers}"
            return ctx.decision("wait_pull", WAIT_PULL, text, candidates=waiting)
        text = f"waits in the hopper; {takers}"
        return ctx.decision("wait_hopper", WAIT_HOPPER, text, candidates=waiting)
    hours_at = ctx.now
    schedule = rule.schedule
    if rule.strategy in PUSH_STRATEGIES and schedule is not None and not is_open(schedule, now):
        hours = _hours_named(rule)
        if not has_open_time(schedule):
            return ctx.decision("exception", SCHEDULE_NEVER_OPEN, f"no open hours in {hours}")
        opening = to_utc(next_open(schedule, now))
        policy = (
            "the organisation's after-hours policy"
            if rule.after_hours_origin == "organisation"
            else "the rule's after-hours policy"
        )
        if rule.after_hours == "hold":
            return ctx.decision(
                "hold",
                AFTER_HOURS_HOLD,
                f"closed by {hours}; held until they open at {opening.isoformat()} ({policy})",
                hold_until=opening,
            )
        if rule.after_hours == "unassigned":
            return ctx.decision(
                "queue_unassigned",
                AFTER_HOURS_UNASSIGNED,
                f"arrived outside {hours}; sent to the Lead Assignment queue ({policy})",
            )
        hours_at = opening  # offer_now
    checker = ctx.checker(hours_at=hours_at)
    if rule.strategy == "direct":
        return _direct(ctx, checker)
    return _push(ctx, checker)


def _hours_named(rule: RuleSnapshot) -> str:
    """Which hours closed the rule, for the explanation: its own schedule or the
    organisation's business hours (the loader resolved the inheritance)."""
    name = f" {rule.schedule_name!r}" if rule.schedule_name else ""
    if rule.schedule_origin == "organisation":
        return f"the organisation's business hours{name}"
    return f"the rule's schedule{name}"


def route_lead(
    lead: LeadSnapshot,
    rules: Iterable[RuleSnapshot],
    pools: Mapping[int, Sequence[MemberSnapshot]],
    now: datetime,
    *,
    directory: Sequence[AgentSnapshot] = (),
    rng: random.Random | None = None,
    usage: Mapping[int, PoolUsage] | None = None,
) -> Decision:
    """Route a new lead: the first matching rule decides; no match → Lead Assignment queue.

    ``pools`` maps a pool id to its members (a rule without pool, or a pool missing from
    the mapping, has no members); ``usage`` a pool id to its own caps and counts.
    """
    match = match_rule(lead, rules)
    rule = match.rule
    if rule is None:
        return Decision(
            outcome="queue_unassigned",
            reason_code=NO_RULE_MATCHED,
            reason="no enabled rule matches this lead; sent to the Lead Assignment queue",
            rules_tried=match.tried,
        )
    members = pools.get(rule.pool_id, ()) if rule.pool_id is not None else ()
    pool = usage.get(rule.pool_id) if usage is not None and rule.pool_id is not None else None
    return decide(
        rule, lead, members, now, rules_tried=match.tried, directory=directory, rng=rng, pool=pool
    )


def next_round(
    rule: RuleSnapshot,
    lead: LeadSnapshot,
    members: Sequence[MemberSnapshot],
    now: datetime,
    *,
    offered_member_ids: frozenset[int],
    round_no: int,
    rules_tried: tuple[RuleTrial, ...] = (),
    directory: Sequence[AgentSnapshot] = (),
    rng: random.Random | None = None,
    checkers: Checkers | None = None,
    pool: PoolUsage | None = None,
) -> Decision:
    """Decide after offer round ``round_no`` ended unclaimed (expired or declined).

    1. After ``max_rounds`` rounds: default agent if eligible, else exception.
    2. Otherwise ``decide`` round ``round_no + 1`` without the members already offered
       (decliners included): the next in line, or the next broadcast batch; nobody left →
       the same fallback.
    A ``hold`` answer keeps ``round_no`` and ``offered_member_ids``: call ``decide`` with
    them again at ``hold_until``.
    """
    if rule.max_rounds is not None and round_no >= rule.max_rounds:
        offered = offered_member_ids
        ctx = _Context.of(
            rule, lead, members, now, rules_tried, round_no, offered, directory, rng, checkers, pool
        )
        checker = ctx.checker()
        elig = checker.evaluate(members, lead, offered=offered_member_ids, pool=pool)
        candidates = [_candidate(m) for m in elig.eligible] + elig.rejected
        why = f"unclaimed after {round_no} round(s) (max_rounds {rule.max_rounds})"
        return _fallback(ctx, checker, MAX_ROUNDS_REACHED, why, candidates)
    return decide(
        rule,
        lead,
        members,
        now,
        rules_tried=rules_tried,
        round_no=round_no + 1,
        offered=offered_member_ids,
        directory=directory,
        rng=rng,
        checkers=checkers,
        pool=pool,
    )


def turn_timestamp(members: Iterable[MemberSnapshot], now: datetime) -> datetime:
    """The ``last_turn_at`` to stamp on an assignment: ``now``, but strictly after every
    earlier turn in the pool, so that round robin never sees two equal turns."""
    stamp = to_utc(now)
    for member in members:
        last = member.agent.last_turn_at
        if last is not None and to_utc(last) >= stamp:
            stamp = to_utc(last) + _ONE_MICROSECOND
    return stamp


# --- pull ---------------------------------------------------------------------------------


def choose_pull(
    memberships: Mapping[int, MemberSnapshot],
    waiting: Sequence[tuple[RuleSnapshot, LeadSnapshot]],
    now: datetime,
    *,
    pools: Mapping[int, PoolUsage] | None = None,
) -> PullDecision:
    """The oldest waiting pull lead this agent may take, within the rule's daily allotment.

    ``memberships`` maps pool id → the agent's membership of that pool; ``waiting`` holds
    the waiting leads of pull rules with their rule.
    1. Leads are tried oldest first (created_at, then id).
    2. A rule whose pool the agent is not in, whose schedule is closed, or which rejects the
       agent for a reason that does not depend on the lead (inactive, away, off hours, cap,
       the pool's own cap (``pools``: pool id → its caps and counts), allotment) is skipped
       for all its leads.
    3. The first lead passing the member's filters is the answer.
    """
    when = to_utc(now)
    checkers: dict[int, Checker] = {}
    blocked: dict[int, str] = {}
    skipped: list[tuple[int, str]] = []
    ordered = sorted(waiting, key=lambda pair: (to_utc(pair[1].created_at), pair[1].id))
    for rule, lead in ordered:
        if rule.strategy != "pull":
            continue
        if rule.id in blocked:
            skipped.append((lead.id, blocked[rule.id]))
            continue
        member = memberships.get(rule.pool_id) if rule.pool_id is not None else None
        if member is None or (rule.schedule is not None and not is_open(rule.schedule, when)):
            blocked[rule.id] = NOT_MEMBER if member is None else OUTSIDE_HOURS
            skipped.append((lead.id, blocked[rule.id]))
            continue
        checker = checkers.setdefault(rule.id, Checker(rule, when))
        counts = checker.counts(member)
        usage = pools.get(rule.pool_id) if pools is not None and rule.pool_id is not None else None
        verdict = checker.check_member(member, lead, counts=counts, pool=usage)
        allotment = rule.pull_allotment
        if verdict.eligible and allotment is not None and counts.day >= allotment:
            verdict = Verdict(ALLOTMENT_REACHED, f"daily allotment {allotment} used")
        if not verdict.eligible:
            code = verdict.reason or NOT_MEMBER
            if code != FILTER_MISMATCH:
                blocked[rule.id] = code
            skipped.append((lead.id, code))
            continue
        return PullDecision(
            lead_id=lead.id,
            rule_id=rule.id,
            member_id=member.id,
            reason_code=None,
            reason=f"oldest waiting lead of rule {rule.name!r} for {member.agent.email}",
            skipped=tuple(skipped),
        )
    return PullDecision(
        lead_id=None,
        rule_id=None,
        member_id=None,
        reason_code=NOTHING_TO_PULL,
        reason="no waiting lead this agent may pull",
        skipped=tuple(skipped),
    )
