"""Simulate distribution (seed 002): who would get what and why — nothing is written.

Replays the leads of the last N days, oldest first, each at its own arrival time, through
the Router in dry-run mode — the loop of live routing, so a simulation sees automations,
sticky owners, caps and turns as `distribute_pending` does — with a rule optionally changed
(and treated as enabled).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from distribution.caches.routing import rulebook_load
from distribution.engine.caps import window_end
from distribution.engine.eligibility import Checker, Checkers
from distribution.engine.types import PERIODS, Caps, MemberSnapshot, ReceivedCounts, RuleSnapshot
from distribution.errors import NotFound
from distribution.loaders.routing import (
    PoolState,
    agent_snapshot,
    filters_of,
    rule_snapshot,
    schedule_snapshot,
    schedules_fill,
)
from distribution.models import Assignment, DistributionAttempt, Pool, Rule, Schedule
from distribution.services.router import Router
from leads.models import Campaign, DistributionState, Lead, LeadStatus, Source

CAP_ORDER = ("day", "week", "month", "hour")  # which cap the totals report, first set wins
CHUNK = 2000  # leads read per query (keyset pagination: memory stays flat)
# the statuses of a lead somebody owns (DESIGN §7): compared as one stage, "assigned"
OWNED_STATUSES = frozenset({"assigned", "working", "contacted", "qualified", "converted", "lost"})


def _stage(status: str, owner: str | None) -> str:
    """What a lead's status says happened, for the comparison with the replay: given to
    somebody ("assigned", whatever its sales status since), or the status itself."""
    return "assigned" if owner is not None or status in OWNED_STATUSES else status


def _edited_rule(book: Any, rule: Rule, sources: Collection[str], now: datetime) -> RuleSnapshot:
    """The snapshot of RULE as edited and not saved (a change form's values: its
    fields set on the instance, its SOURCES by slug), enabled; the Router reads the edited
    instance too (initial status, sticky owner, default agent)."""
    schedules_fill(book.schedules, [rule.schedule_id], now)
    default = None
    if rule.default_agent_id is not None:
        user = User.objects.select_related("agent").filter(pk=rule.default_agent_id).first()
        if user is not None:
            schedules_fill(
                book.schedules, [getattr(getattr(user, "agent", None), "schedule_id", None)], now
            )
            book.users[user.pk] = user
            default = agent_snapshot(user, now, schedules=book.schedules)
    snapshot = rule_snapshot(rule, now, schedules=book.schedules, default_agent=default)
    book.models[rule.pk] = rule
    return dataclasses.replace(snapshot, enabled=True, sources=frozenset(sources))


def _changed_rule(rule: RuleSnapshot, changes: dict[str, Any], now: datetime) -> RuleSnapshot:
    """RULE with CHANGES applied (the admin form's or --set values), and enabled."""
    from distribution.configuration.base import parse_duration

    values: dict[str, Any] = {"enabled": True}
    for key, value in changes.items():
        if value in (None, ""):
            continue
        if key == "strategy":
            values["strategy"] = str(value)
        elif key == "pool":
            pool = Pool.objects.filter(name=value).first()
            if pool is None:
                raise NotFound(f"No pool {value!r}.")
            values["pool_id"] = pool.pk
        elif key in ("claim_timeout",):
            values[key] = parse_duration(value)
            if values[key] is None:
                raise ValueError(f'{key}: {value!r} is not a duration (e.g. "15m")')
        elif key in ("batch_size", "max_rounds", "pull_allotment", "priority"):
            values[key] = int(value)
        elif key == "filters":
            values["filters"] = filters_of(value)
        elif key == "caps":
            caps = dict(value)
            values["caps"] = Caps(
                *(
                    int(caps[p]) if caps.get(p) not in (None, "") else None
                    for p in ("hour", "day", "week", "month")
                )
            )
        elif key == "after_hours":
            values["after_hours"] = str(value)
            values["after_hours_origin"] = "rule"
        elif key == "schedule":
            schedule = (
                Schedule.objects.prefetch_related("intervals", "holidays")
                .filter(name=value)
                .first()
            )
            if schedule is None:
                raise NotFound(f"No schedule {value!r}.")
            values["schedule"] = schedule_snapshot(schedule, now.date())
            values["schedule_origin"], values["schedule_name"] = "rule", schedule.name
        elif key == "sources":
            values["sources"] = frozenset(value)
        else:
            raise ValueError(f"cannot simulate a change of {key!r}")
    return dataclasses.replace(rule, **values)


def _cap_shown(member: MemberSnapshot, rule: RuleSnapshot) -> int | None:
    caps = member.caps.merged_over(rule.caps)
    return next((c for p in CAP_ORDER if (c := caps.get(p)) is not None), None)


class RunningCounts:
    """The replayed pools' cap-window counts, kept running instead of re-counted from every
    receipt at every decision: zero when the replay starts (the replayed leads are the ones
    the windows would hold), one more per lead given (`PoolState.record_turn`, as in live
    routing), and a period back to zero when the replay's clock enters its next window."""

    def __init__(self, turns: dict[int, datetime] | None = None) -> None:
        # TURNS: each agent's last turn as it was when the replay starts (a replay compared
        # with what happened starts from the turns of then, not of now)
        self._turns = turns
        self._ends: dict[int, tuple[PoolState, dict[str, datetime]]] = {}  # by id(state)
        self._next: datetime | None = None  # the earliest window end of every pool

    def advance(self, pools: Collection[PoolState], now: datetime) -> None:
        """Bring every pool's counts to NOW (leads are replayed oldest first)."""
        if len(pools) == len(self._ends) and self._next is not None and now < self._next:
            return
        for state in pools:
            known = self._ends.get(id(state))
            if known is None or known[0] is not state:
                turns = self._turns
                state.members[:] = [
                    dataclasses.replace(
                        m,
                        agent=m.agent
                        if turns is None
                        else dataclasses.replace(m.agent, last_turn_at=turns.get(m.agent.id)),
                        received_at=(),
                        received_counts=ReceivedCounts(),
                    )
                    for m in state.members
                ]
                state.counts = ReceivedCounts()  # the pool's own windows too
                ends = {p: window_end(p, now, state.timezone) for p in PERIODS}
                self._ends[id(state)] = (state, ends)
                continue
            ends = known[1]
            rolled = {p for p in PERIODS if now >= ends[p]}
            if not rolled:
                continue
            for i, m in enumerate(state.members):
                c = m.received_counts or ReceivedCounts()
                if any(c.get(p) for p in rolled):
                    counts = ReceivedCounts(*(0 if p in rolled else c.get(p) for p in PERIODS))
                    state.members[i] = dataclasses.replace(m, received_counts=counts)
            c = state.counts
            state.counts = ReceivedCounts(*(0 if p in rolled else c.get(p) for p in PERIODS))
            for p in rolled:
                ends[p] = window_end(p, now, state.timezone)
        self._next = min(
            (end for _, ends in self._ends.values() for end in ends.values()), default=None
        )


class ReplayCheckers(Checkers):
    """The Checkers of a replay, whose clock moves lead by lead. Given pre-counted window
    counts (RunningCounts), a Checker answers the same at any time unless it judges agents'
    own hours; so the Checker of a rule whose agents have no schedule to judge (or that does
    not require their hours) is kept from lead to lead, as a batch keeps it, and any other
    rule gets a Checker of each lead's moment. MEMBERS: a rule's pool members."""

    def __init__(self, members: Callable[[RuleSnapshot], Sequence[MemberSnapshot]]) -> None:
        super().__init__()
        self._members = members
        self._timeless: dict[int, tuple[RuleSnapshot, Checker | None]] = {}  # by id(rule)

    def _judges_hours(self, rule: RuleSnapshot) -> bool:
        if not rule.require_agent_hours:
            return False
        if rule.strategy == "direct":  # the named agents come from the lead
            return True
        if rule.default_agent is not None and rule.default_agent.schedule is not None:
            return True
        return any(m.agent.schedule is not None for m in self._members(rule))

    def get(
        self, rule: RuleSnapshot, now: datetime, *, hours_at: datetime | None = None
    ) -> Checker:
        known = self._timeless.get(id(rule))
        # the rule is kept with its Checker: while cached, the id is not another rule's
        if known is None or known[0] is not rule:
            checker = None if self._judges_hours(rule) else Checker(rule, now)
            known = self._timeless[id(rule)] = (rule, checker)
        return known[1] or Checker(rule, now, hours_at=hours_at)


def replay_chunks(queryset: QuerySet[Lead], *, limit: int | None) -> Iterator[list[Lead]]:
    """The leads, oldest first, in chunks of CHUNK by keyset pagination (created_at, id):
    one query per chunk, none kept after it is replayed. Their sources and campaigns are
    few: each read once and shared (no join building one per lead)."""
    chunk = CHUNK
    left = limit
    after: tuple[datetime, int] | None = None
    related: list[tuple[Any, type[Source | Campaign], dict[int, Any]]] = [
        (Lead._meta.get_field("source"), Source, {}),
        (Lead._meta.get_field("campaign"), Campaign, {}),
    ]
    while left is None or left > 0:
        qs = queryset
        if after is not None:
            stamp, pk = after
            qs = qs.filter(Q(created_at__gt=stamp) | Q(created_at=stamp, id__gt=pk))
        size = chunk if left is None else min(chunk, left)
        rows = list(qs.order_by("created_at", "id")[:size])
        if not rows:
            return
        for field, model, known in related:
            ids = {i for row in rows if (i := getattr(row, field.attname)) is not None}
            if not ids <= known.keys():
                known.update(model.objects.in_bulk(ids - known.keys()))
            for row in rows:
                i = getattr(row, field.attname)
                field.set_cached_value(row, known.get(i) if i is not None else None)
        yield rows
        if left is not None:
            left -= len(rows)
        after = (rows[-1].created_at, rows[-1].pk)


def _as_arrived(lead: Lead, owners: dict[int, int | None]) -> None:
    """The lead as it was when it arrived (pending, nobody's), its original (when a
    duplicate) owned by whoever the replay gave it to, as live routing would have seen."""
    lead.status = LeadStatus.PENDING
    lead.distribution_state = DistributionState.PENDING
    lead.owner_id = None
    lead.held_until = None
    field = Lead._meta.get_field("duplicate_of")
    if lead.duplicate_of_id in owners and field.is_cached(lead):
        original = lead.duplicate_of
        if original is not None:
            original.owner_id = owners[lead.duplicate_of_id]


class Simulation:
    """One replay: `decisions()` streams the DESIGN §7 decisions, `totals()` follows them.

    1. Load the rules (RULE_NAME changed by CHANGES and enabled), automations included, and
       every rule's pool once, through a dry-run Router: no lock, no write, nothing sent.
    2. For each lead of the last DAYS days (LIMIT at most), oldest first, at its arrival
       time: the Router plans it (automation, rule table, sticky owner), decides and
       applies the decision in memory — turns move and counts grow as live routing's do,
       from the turns of the replay's start (each agent's last assignment before it).
    3. A lead offered to one agent alone is claimed by that agent, as the replay assumes.
    4. With RULE_NAME, every lead is replayed (the others' turns and caps count), but only
       the leads that rule takes are reported.
    5. Each decision says what really happened to the lead (`actual`: its owner, status and
       rule now) and whether the replay `differs` from it (another owner, or another stage:
       given to somebody, waiting, held, in a queue); the totals say how many of the
       reported leads each agent would receive and how many it did (`received`).

    EDITED (with EDITED_SOURCES): a rule as a change form holds it, unsaved, simulated in
    place of the stored one (no CHANGES then).
    """

    def __init__(
        self,
        *,
        rule_name: str | None = None,
        days: int = 7,
        changes: dict[str, Any] | None = None,
        now: datetime | None = None,
        limit: int | None = None,
        edited: Rule | None = None,
        edited_sources: Collection[str] = (),
    ) -> None:
        now = now or timezone.now()
        book = rulebook_load(now, automations=True)
        self.target: RuleSnapshot | None = None
        if edited is not None:
            target = self.target = _edited_rule(book, edited, edited_sources, now)
            if not any(r.id == target.id for r in book.snapshots):
                raise NotFound(f"No rule {edited.name!r}.")
            book.snapshots = [target if r.id == target.id else r for r in book.snapshots]
        elif rule_name is not None:
            model = Rule.objects.filter(name=rule_name).first()
            if model is None:
                raise NotFound(f"No rule {rule_name!r}.")
            original = book.snapshot(model.pk)
            assert original is not None
            target = self.target = _changed_rule(original, changes or {}, now)
            book.snapshots = [target if r.id == target.id else r for r in book.snapshots]
        # the trigger of distribute_pending: `created` automations fire for it
        self.router = Router(
            now=now,
            trigger=DistributionAttempt.Trigger.COMMAND,
            book=book,
            automations=True,
            dry_run=True,
        )
        self.router.load_pools(book.snapshots)
        start = now - timedelta(days=days)
        self.leads = Lead.objects.filter(created_at__gte=start, created_at__lte=now)
        # every pooled agent's last turn before the replay (its last assignment then)
        agent_ids = {m.agent.id for state in self.router.pools.values() for m in state.members}
        self.turns_at_start: dict[int, datetime] = dict(
            Assignment.objects.filter(agent_id__in=agent_ids, created_at__lt=start)
            .values("agent_id")
            .annotate(last=Max("created_at"))
            .values_list("agent_id", "last")
        )
        self.limit = limit
        self.received: Counter[str] = Counter()
        self.actually_received: Counter[str] = Counter()
        self.differing = 0
        self._emails: dict[int, str] = {}
        self._rule_names = {r.id: r.name for r in book.snapshots}

    def _owner_emails(self, chunk: Sequence[Lead]) -> None:
        """The e-mails of the chunk's actual owners (one query for the ones not known yet)."""
        missing = {i for lead in chunk if (i := lead.owner_id) is not None} - self._emails.keys()
        if missing:
            rows = User.objects.filter(pk__in=missing).values_list("pk", "email")
            self._emails.update((pk, email or "") for pk, email in rows)

    def decisions(self) -> Iterator[dict[str, Any]]:
        """Replay the leads; one decision (a dict) per lead reported, as it is made."""
        router, target = self.router, self.target
        counts = RunningCounts(self.turns_at_start)
        owners: dict[int, int | None] = {}  # replayed lead → its owner in the replay
        claim = Assignment.Method.CLAIM
        for chunk in replay_chunks(self.leads, limit=self.limit):
            # what the Checkers keep is per member snapshot: let it go chunk by chunk
            router.checkers = ReplayCheckers(router.members)
            router.attach_originals(chunk)
            router.as_arrived(chunk)  # owner and action count as on arrival: no query
            self._owner_emails(chunk)
            for lead in chunk:
                counts.advance(router.pools.values(), lead.created_at)
                router.now = lead.created_at
                # what really happened to it, before the replay takes it back to its arrival
                actual_owner = self._emails.get(lead.owner_id) if lead.owner_id else None
                actual_status = str(lead.status)
                actual = {
                    "owner": actual_owner,
                    "status": actual_status,
                    "rule": self._rule_names.get(lead.rule_id) if lead.rule_id else None,
                }
                _as_arrived(lead, owners)
                job = router.plan_new(lead)
                router.run([job])
                decision = job.decision
                assert decision is not None
                owner = None
                if decision.chosen and (decision.outcome == "assign" or len(decision.chosen) == 1):
                    owner = decision.chosen[0]
                    if decision.outcome == "offer":
                        rule = router.book.models.get(decision.rule_id or 0)
                        router.assign(lead, agent_id=owner.agent_id, rule=rule, method=claim)
                router.flush()  # a dry run: drops the writes
                owners[lead.pk] = lead.owner_id
                if target is not None and (job.rule is None or job.rule.id != target.id):
                    continue
                email = owner.email if owner else None
                if email is not None:
                    self.received[email] += 1
                if actual_owner is not None:
                    self.actually_received[actual_owner] += 1
                differs = email != actual_owner or _stage(decision.status, email) != _stage(
                    actual_status, actual_owner
                )
                self.differing += differs
                yield {
                    "lead": lead.pk,
                    "rule": decision.rule_name,
                    "owner": email,
                    "status": decision.status,
                    "reason": decision.reason,
                    "candidates": [
                        {"agent": c.email, "rank": c.rank, "reason": c.reason}
                        for c in decision.candidates
                    ],
                    "actual": actual,
                    "differs": differs,
                }

    def totals(self) -> dict[str, dict[str, int | None]]:
        """Per agent of the reported rules' pools (and every agent that would receive or did
        receive a reported lead): leads it would receive, its cap, and how many of those
        leads it really received (`received`)."""
        router = self.router
        totals: dict[str, dict[str, int | None]] = {}

        def entry(email: str) -> dict[str, int | None]:
            return totals.setdefault(email, {"would_receive": 0, "cap": None, "received": 0})

        if self.target is not None:
            shown = [self.target]
        else:
            shown = [r for r in router.book.snapshots if r.enabled]
        for rule in shown:
            for member in router.members(rule):
                line = entry(member.email)
                cap = _cap_shown(member, rule)
                if cap is not None:
                    line["cap"] = cap if line["cap"] is None else min(line["cap"] or cap, cap)
        for email, n in self.received.items():
            entry(email)["would_receive"] = n
        for email, n in self.actually_received.items():
            entry(email)["received"] = n
        return dict(sorted(totals.items()))


def rule_simulate(
    *,
    rule_name: str | None = None,
    days: int = 7,
    changes: dict[str, Any] | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Replay the last DAYS days of leads (all, or the first LIMIT); returns the DESIGN §7
    simulate document (Simulation streams it)."""
    simulation = Simulation(rule_name=rule_name, days=days, changes=changes, now=now, limit=limit)
    decisions = list(simulation.decisions())
    return {
        "decisions": decisions,
        "totals": simulation.totals(),
        "differing": simulation.differing,
    }


def rule_simulate_shown(
    *,
    shown: int,
    rule_name: str | None = None,
    days: int = 7,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replay every lead of the last DAYS days as `rule_simulate` does, keeping only the first
    SHOWN decisions (a page cannot show 100,000 rows); `replayed` counts them all and the
    totals cover them all."""
    simulation = Simulation(rule_name=rule_name, days=days, changes=changes)
    return _shown(simulation, shown)


def _shown(simulation: Simulation, shown: int) -> dict[str, Any]:
    decisions: list[dict[str, Any]] = []
    replayed = 0
    for decision in simulation.decisions():
        replayed += 1
        if len(decisions) < shown:
            decisions.append(decision)
    return {
        "decisions": decisions,
        "replayed": replayed,
        "totals": simulation.totals(),
        "differing": simulation.differing,
    }


def rule_simulate_edited(
    *, rule: Rule, sources: Collection[str], shown: int, days: int = 7
) -> dict[str, Any]:
    """Replay the last DAYS days with RULE as edited on its change page and NOT saved (the
    instance holds the form's values; SOURCES: the form's source slugs), treated as enabled;
    as `rule_simulate_shown`, nothing is written. Its performance tiers are the stored ones."""
    simulation = Simulation(days=days, edited=rule, edited_sources=sources)
    return _shown(simulation, shown)
