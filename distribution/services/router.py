"""Agent routing: decide who gets a lead, persist it, and record why.

`Router` is the one write path shared by arrival, the `distribute_pending` batch, expiry
and decline rounds, held leads, claims and manual assignment: it loads the rules once, locks
and loads each pool once, asks the engine, keeps its pool snapshots current in memory as
leads are given out, and writes everything in bulk (so a batch of leads costs a fixed number
of queries, and one lead a constant number whatever the pool size).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.utils import timezone

from accounts.models import User
from distribution.caches.routing import RuleBook, rulebook_load
from distribution.db.locks import pools_lock
from distribution.db.pools import pools_load
from distribution.engine import routing as engine
from distribution.engine.eligibility import Checkers
from distribution.engine.filters import match_filters
from distribution.engine.schedule import add_open_time
from distribution.engine.types import (
    AgentSnapshot,
    Candidate,
    Decision,
    LeadSnapshot,
    RuleSnapshot,
    RuleTrial,
)
from distribution.loaders.routing import (
    PoolKey,
    PoolState,
    PoolWanted,
    agent_snapshot,
    directory_load,
    extra_fields_of,
    filters_of,
    lead_extras_load,
    lead_snapshot,
    pool_key,
    profile_phone,
)
from distribution.models import Assignment, Automation, DistributionAttempt, Rule, Strategy
from distribution.services.history import (
    compact_candidates,
    outcome_code,
    store_candidates,
    trial_lines,
)
from distribution.services.notify import Email, tcpa_check
from distribution.services.writes import (
    Writes,
    new_activity,
    new_assignment,
    new_attempt,
    new_event,
    new_notice,
    new_offer,
)
from leads.models import DistributionState, Lead, LeadEvent, LeadStatus

Trigger = DistributionAttempt.Trigger
Method = Assignment.Method
# triggers of a lead's first distribution: its `created` automations fire then
NEW_LEAD_TRIGGERS = frozenset({Trigger.ARRIVAL, Trigger.SWEEPER, Trigger.COMMAND})


@dataclass
class Job:
    """One lead to decide: fresh routing, a further round, or a resumed (held) lead."""

    lead: Lead
    snap: LeadSnapshot
    started: float
    rule: RuleSnapshot | None = None
    tried: tuple[RuleTrial, ...] = ()
    round_no: int = 1
    offered: frozenset[int] = frozenset()
    after_round: bool = False  # decide with engine.next_round (an offer round ended)
    decision: Decision | None = None  # decided already (no rule, automation, sticky owner)
    method: str = Method.AUTO
    hopper_owner: int | None = None  # automation "hopper with owner"
    note: str = ""


class Router:
    """Decide and persist leads through the engine; see the module docstring."""

    def __init__(
        self,
        *,
        now: datetime | None = None,
        trigger: str,
        actor: User | None = None,
        book: RuleBook | None = None,
        automations: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.now = now or timezone.now()
        self.trigger = trigger
        self.actor = actor
        self._book = book
        self._book_users = False
        self._automations = automations
        self.pools: dict[PoolKey, PoolState] = {}
        # the filter fields beside the lead row (owner, action_count) read, per lead id
        self._extras: dict[int, dict[str, object]] = {}
        self._pools_of: dict[int, list[PoolState]] = {}  # agent id → loaded pools with them
        self.directory: list[AgentSnapshot] = []
        self.users: dict[int, User] = {}
        # e-mail and phone of the pools' agents, as the pool loads read them
        self.contacts: dict[int, tuple[str, str]] = {}
        # eligibility checks shared by the decisions of this operation (one `now`)
        self.checkers = Checkers()
        self.writes = Writes()
        # simulate: no pool locks, and flush() drops the writes (nothing written, no e-mail
        # or webhook sent); pools, turns and counts still change in memory, lead after lead
        self.dry_run = dry_run

    @property
    def actor_id(self) -> int | None:
        return self.actor.pk if self.actor is not None and self.actor.pk else None

    def _contact(self, agent_id: int) -> tuple[str, str]:
        """The agent's e-mail and phone, for messages, e-mails and the ring-all webhook."""
        known = self.contacts.get(agent_id)
        if known is not None:
            return known
        user = self.users.get(agent_id)
        return (user.email or "", profile_phone(user)) if user is not None else ("", "")

    # --- loading ----------------------------------------------------------------------
    @property
    def book(self) -> RuleBook:
        if self._book is None:
            self._book = rulebook_load(self.now, automations=self._automations)
        if not self._book_users:
            # default agents and automation targets, for e-mails and phone numbers
            self.users.update(self._book.users)
            self._book_users = True
        return self._book

    def pool(self, rule: RuleSnapshot) -> PoolState | None:
        key = pool_key(rule)
        return self.pools.get(key) if key is not None else None

    def members(self, rule: RuleSnapshot) -> list[Any]:
        state = self.pool(rule)
        return state.members if state is not None else []

    def load_pools(self, rules: Iterable[RuleSnapshot]) -> None:
        """Lock every pool the rules use (id order), then load each once."""
        all_rules = list(rules)
        # a pool is loaded once per cap time zone (its window counts depend on it) and
        # metrics window (for the rules that read metrics)
        wanted = {
            key for r in all_rules if (key := pool_key(r)) is not None and key not in self.pools
        }
        if not wanted:
            return
        if not self.dry_run:
            pools_lock(pool_id for pool_id, _, _ in wanted)
        needs = []
        for pool_id, tz, window in wanted:
            using = [r for r in all_rules if r.pool_id == pool_id]
            needs.append(
                PoolWanted(
                    pool_id,
                    tz,
                    with_open_leads=any(r.strategy == Strategy.LOAD_BALANCED for r in using),
                    with_metrics=window is not None,
                    metrics_window=window if window is not None else PoolWanted.metrics_window,
                )
            )
        loaded = pools_load(needs, now=self.now, schedules=self.book.schedules)
        for key, state in loaded.items():
            self.pools[key] = state
            self.contacts.update(state.contacts)
            for agent_id in state.index:
                self._pools_of.setdefault(agent_id, []).append(state)

    def load_directory(self, jobs: Sequence[Job]) -> None:
        direct = [j.snap for j in jobs if j.rule is not None and j.rule.strategy == "direct"]
        if direct:
            users = directory_load(direct, self.now)
            known = {a.id for a in self.directory}
            self.directory += [a for a in users if a.id not in known]

    # --- planning ---------------------------------------------------------------------
    def prepare(self, leads: Sequence[Lead], fields: frozenset[str] | None = None) -> None:
        """Read the filter fields beside the lead rows (owner, action_count) that the rules
        and automations (or FIELDS) name, for all LEADS at once (nothing when none do)."""
        wanted = self.book.extra_fields if fields is None else fields
        if not wanted:
            return
        todo = [lead for lead in leads if not wanted <= self._extras.get(lead.pk, {}).keys()]
        if todo:
            for lead_id, values in lead_extras_load(todo, wanted).items():
                self._extras.setdefault(lead_id, {}).update(values)

    def as_arrived(self, leads: Sequence[Lead]) -> None:
        """A replay: the extra filter fields as on arrival (no owner, no activity yet)."""
        for lead in leads:
            self._extras[lead.pk] = {"owner": None, "action_count": 0}

    def job(self, lead: Lead, **kwargs: Any) -> Job:
        wanted = self.book.extra_fields
        if wanted and not wanted <= self._extras.get(lead.pk, {}).keys():
            self.prepare([lead])  # a caller that did not prepare its leads: this one alone
        return Job(
            lead=lead,
            snap=lead_snapshot(lead, self._extras.get(lead.pk)),
            started=time.perf_counter(),
            **kwargs,
        )

    def _prepare_members(self, jobs: Sequence[Job]) -> None:
        """The extra filter fields the loaded pools' member filters name, read for the
        jobs' leads if planning did not (1 query per field, none when no filter names one)."""
        wanted = extra_fields_of(*(m.filters for s in self.pools.values() for m in s.members))
        if not wanted:
            return
        todo = [j for j in jobs if not wanted <= self._extras.get(j.lead.pk, {}).keys()]
        if todo:
            self.prepare([j.lead for j in todo], wanted)
            for j in todo:
                j.snap = lead_snapshot(j.lead, self._extras.get(j.lead.pk))

    def plan_new(self, lead: Lead) -> Job:
        """Which rule takes a new lead: an automation, else the rule table, else nobody.

        1. An enabled `created` automation whose filters match decides first (seed 004).
        2. Else the first enabled rule in priority order that matches (engine).
        3. A sticky-owner rule sends a duplicate of an owned lead to that owner.
        """
        job = self.job(lead)
        if self._automations and self.trigger in NEW_LEAD_TRIGGERS:
            automation = next(
                (
                    a
                    for a in self.book.automations
                    if match_filters(filters_of(a.filters), job.snap)[0]
                ),
                None,
            )
            if automation is not None and self.plan_automation(job, automation):
                return job
        rule = self.plan_rule_table(
            job,
            unmatched="No enabled rule matches this lead; it waits in the Lead Assignment queue.",
        )
        model = self.book.models.get(rule.id) if rule is not None else None
        if model is not None and model.sticky_owner:
            self._plan_sticky(job)
        return job

    def plan_rule_table(self, job: Job, *, unmatched: str) -> RuleSnapshot | None:
        """The first enabled rule in priority order that matches the job's lead (engine);
        when none does, the job is decided: the Lead Assignment queue, for reason UNMATCHED."""
        match = engine.match_rule(job.snap, self.book.ordered(), ordered=True)
        job.rule, job.tried = match.rule, match.tried
        if match.rule is None:
            job.decision = Decision(
                outcome="queue_unassigned",
                reason_code="no_rule_matched",
                reason=unmatched,
                rules_tried=match.tried,
            )
        return match.rule

    def plan_automation(self, job: Job, automation: Automation) -> bool:
        """Apply an automation's action to the plan; False = go on with the rule table."""
        job.note = f"automation {automation.name!r}"
        if automation.action == Automation.Action.ASSIGNMENT_RULES:
            return False
        uid = automation.target_user_id
        # the book reads target users fresh; an automation loaded elsewhere brings its own
        user = (self.book.users.get(uid) or automation.target_user) if uid is not None else None
        if automation.action == Automation.Action.USER and user is not None:
            self.users[user.pk] = user
            cand = Candidate(agent_id=user.pk, email=user.email or "", rank=1)
            job.method = Method.AUTOMATION
            job.decision = Decision(
                outcome="assign",
                reason_code="automation",
                reason=f"Automation {automation.name!r}: sent to {user.email}",
                chosen=(cand,),
                candidates=(cand,),
            )
            return True
        target = self.book.snapshot(automation.target_rule_id)
        if automation.action == Automation.Action.HOPPER:
            if target is None:
                target = next(
                    (r for r in self.book.snapshots if r.enabled and r.strategy == "hopper"), None
                )
            job.hopper_owner = automation.target_user_id
        if target is None:
            job.decision = Decision(
                outcome="exception",
                reason_code="automation_no_rule",
                reason=f"Automation {automation.name!r}: no rule to send the lead to",
            )
            return True
        job.rule = target
        job.tried = (
            RuleTrial(
                target.id,
                target.name,
                True,
                "automation",
                f"chosen by automation {automation.name!r}",
            ),
        )
        return True

    def attach_originals(self, leads: Sequence[Lead]) -> None:
        """Read the leads' duplicate-of leads when a sticky-owner rule may ask for them
        (1 query, none when no rule is sticky or no lead a duplicate)."""
        if not any(rule.sticky_owner for rule in self.book.models.values()):
            return
        field = Lead._meta.get_field("duplicate_of")
        todo = [lead for lead in leads if lead.duplicate_of_id and not field.is_cached(lead)]
        if not todo:
            return
        originals = Lead.objects.in_bulk({lead.duplicate_of_id for lead in todo})
        for lead in todo:
            field.set_cached_value(lead, originals.get(lead.duplicate_of_id))

    def _plan_sticky(self, job: Job) -> None:
        original = job.lead.duplicate_of
        if original is None or original.owner_id is None or job.rule is None:
            return
        owner = User.objects.select_related("agent__schedule").filter(pk=original.owner_id).first()
        if owner is None:
            return
        self.users[owner.pk] = owner
        from distribution.engine.eligibility import check_agent

        verdict = check_agent(agent_snapshot(owner, self.now), job.rule, self.now)
        if not verdict.eligible:
            job.note = f"sticky owner {owner.email} not eligible ({verdict.reason})"
            return
        cand = Candidate(agent_id=owner.pk, email=owner.email or "", rank=1)
        job.method = Method.STICKY
        job.decision = Decision(
            outcome="assign",
            reason_code="sticky_owner",
            reason=f"Rule {job.rule.name!r}: duplicate of lead #{original.pk}, sent to its "
            f"owner {owner.email}",
            rule_id=job.rule.id,
            rule_name=job.rule.name,
            rules_tried=job.tried,
            chosen=(cand,),
            candidates=(cand,),
        )

    # --- deciding and persisting ------------------------------------------------------
    def run(self, jobs: Sequence[Job]) -> list[DistributionAttempt]:
        """Decide every job in order and persist; pools are locked once for all of them."""
        self.load_pools([j.rule for j in jobs if j.rule is not None and j.decision is None])
        self._prepare_members([j for j in jobs if j.decision is None])
        self.load_directory([j for j in jobs if j.decision is None])
        attempts = []
        for job in jobs:
            # kept on the job: a dry run reads its decisions there
            job.decision = decision = job.decision or self.decide(job)
            attempts.append(self.persist(job, decision))
        return attempts

    def decide(self, job: Job) -> Decision:
        rule = job.rule
        assert rule is not None
        # an offer round that ended moves on to the next in line; else the first decision
        step = (
            partial(engine.next_round, offered_member_ids=job.offered)
            if job.after_round
            else partial(engine.decide, offered=job.offered)
        )
        state = self.pool(rule)
        return step(
            rule,
            job.snap,
            state.members if state is not None else [],
            self.now,
            rules_tried=job.tried,
            round_no=job.round_no,
            directory=self.directory,
            checkers=self.checkers,
            pool=state.usage if state is not None else None,
        )

    def _change(
        self, lead: Lead, status: str, kind: str, message: str, data: dict[str, Any]
    ) -> None:
        """Move the lead to STATUS and write one timeline event: the status change carrying
        what happened, or, when the status stays, an event of KIND."""
        event = lead.transition_to(status, by=self.actor, note=message[:500])
        if event is None:
            event = new_event(
                {"lead": lead, "actor": self.actor},
                lead_id=lead.pk,
                kind=kind,
                actor_id=self.actor_id,
                message=message[:500],
            )
        event.data = {**event.data, **data}
        event.created_at = self.now
        self.writes.events.append(event)

    def _touch(self, lead: Lead) -> None:
        lead.updated_at = self.now
        self.writes.leads[lead.pk] = lead

    def persist(self, job: Job, decision: Decision) -> DistributionAttempt:
        """Write the decision: the lead's state, offers or assignment, the history."""
        lead = job.lead
        rule = self.book.models.get(decision.rule_id) if decision.rule_id else None
        outcome = decision.outcome
        lead.held_until = None
        if outcome == "assign" and decision.chosen:
            method = Method.DEFAULT if decision.used_default_agent else job.method
            if rule is not None and rule.strategy == Strategy.DIRECT and method == Method.AUTO:
                method = Method.DIRECT
            self.assign(
                lead,
                agent_id=decision.chosen[0].agent_id,
                rule=rule,
                method=method,
                note=decision.reason,
            )
        elif outcome == "offer":
            self._offer(job, decision, rule)
        else:
            lead.owner_id = job.hopper_owner if outcome == "wait_hopper" else None
            lead.rule = rule
            self._change(
                lead,
                decision.status,
                LeadEvent.Kind.ROUTED,
                decision.reason,
                {"outcome": outcome, "code": decision.reason_code},
            )
            waiting = outcome in ("hold", "wait_pull", "wait_hopper")
            lead.distribution_state = (
                DistributionState.ACTIVE if waiting else DistributionState.DONE
            )
            lead.exception_reason = decision.reason[:200] if outcome == "exception" else ""
            lead.held_until = decision.hold_until if outcome == "hold" else None
            lead.sla_due_at = None
            self._touch(lead)
        candidates, more = store_candidates(decision)
        reason = decision.reason + more + (f" [{job.note}]" if job.note else "")
        attempt = new_attempt(
            {"lead": lead, "actor": self.actor},
            lead_id=lead.pk,
            trigger=self.trigger,
            rule_name=decision.rule_name or "",
            rules_tried=trial_lines(decision.rules_tried),
            candidates=candidates,
            all_candidates=compact_candidates(decision),
            outcome=outcome_code(decision),
            reason=reason,
            duration_ms=(time.perf_counter() - job.started) * 1000,
            actor_id=self.actor_id,
            created_at=self.now,
        )
        self.writes.attempts.append(attempt)
        return attempt

    def _offer(self, job: Job, decision: Decision, rule: Rule | None) -> None:
        lead = job.lead
        lead.owner_id = None
        lead.rule = rule
        lead.distribution_state = DistributionState.ACTIVE
        lead.exception_reason = ""
        self._change(
            lead,
            LeadStatus.OFFERED,
            LeadEvent.Kind.OFFERED,
            decision.reason,
            {
                "round": decision.round_no,
                "agents": [c.email for c in decision.chosen],
                "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
            },
        )
        self._touch(lead)
        broadcast = rule is not None and rule.strategy == Strategy.BROADCAST
        agents = []
        related = {"lead": lead, "rule": rule}
        rule_id = rule.pk if rule is not None else None
        expires = decision.expires_at.isoformat() if decision.expires_at else ""
        for cand in decision.chosen:
            self.writes.offers.append(
                new_offer(
                    related,
                    lead_id=lead.pk,
                    agent_id=cand.agent_id,
                    member_id=cand.member_id,
                    rule_id=rule_id,
                    round=decision.round_no,
                    batch=decision.round_no,
                    expires_at=decision.expires_at,
                    created_at=self.now,
                )
            )
            # no inbox notice: the offers list is where an agent sees an offer
            self.writes.emails.append(
                Email(
                    "lead_offered",
                    cand.agent_id,
                    lead.pk,
                    {"broadcast": broadcast, "expires_at": expires},
                )
            )
            agents.append({"email": cand.email, "phone": self._contact(cand.agent_id)[1]})
        if broadcast and rule is not None:
            self._ring_all(lead, rule, decision, agents)

    def _ring_all(
        self, lead: Lead, rule: Rule, decision: Decision, agents: list[dict[str, str]]
    ) -> None:
        """Push a broadcast to the telephony webhook, within TCPA hours when asked."""
        # the rule's hours, or the organisation's business hours it inherits
        snap = self.book.snapshot(rule.pk)
        hours = snap.schedule if snap is not None else None
        fallback = hours.timezone if hours is not None else timezone.get_default_timezone_name()
        tcpa = (
            tcpa_check(
                attributes=lead.attributes or {},
                phone=lead.phone,
                country=lead.country,
                fallback_tz=fallback,
                now=self.now,
            )
            if rule.tcpa
            else None
        )
        if tcpa is not None and not tcpa.allowed:
            self.writes.events.append(
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.NOTE,
                    created_at=self.now,
                    message="Ring-all webhook not sent: outside TCPA calling hours (08:00–21:00 "
                    f"lead-local in {tcpa.describe()})",
                    data={"zones": list(tcpa.where.zones), "zone_source": tcpa.where.source},
                )
            )
            return
        self.writes.webhooks.append(
            {
                "event": "offer",
                "strategy": rule.strategy,
                "rule": rule.name,
                "round": decision.round_no,
                "lead": {
                    "id": lead.pk,
                    "name": lead.full_name,
                    "phone": lead.phone,
                    "pin": lead.pin,
                },
                "agents": agents,
                "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
            }
        )

    def assign(
        self,
        lead: Lead,
        *,
        agent_id: int,
        rule: Rule | None,
        method: str,
        note: str = "",
        initial_status: str | None = None,
        initial_rule: Rule | None = None,
    ) -> None:
        """Give the lead to an agent: owner, initial status and activity, the received log,
        the agent's turn, timeline, notice and e-mail (after commit). The initial status and
        activity are RULE's, or INITIAL_RULE's when given (a manager assigning a lead that
        a rule routed); INITIAL_STATUS, when given, wins over both."""
        stamp = self.now
        pool_id = None
        if rule is not None:
            snap = self.book.snapshot(rule.pk) if self.pools else None
            state = self.pool(snap) if snap is not None else None
            if state is not None and state.member_of(agent_id) is not None:
                pool_id = state.pool_id
                # strictly after every turn in the pool: round robin never sees a tie
                stamp = engine.turn_timestamp(state.members, self.now)
            elif rule.pool_id is not None and method in (
                Method.CLAIM,
                Method.PIN,
                Method.PULL,
                Method.HOPPER,
            ):
                pool_id = rule.pool_id
        stamp = max(stamp, self.writes.turns.get(agent_id, stamp))
        for state in self._pools_of.get(agent_id, ()):
            state.record_turn(agent_id, stamp, received=state.pool_id == pool_id)
        self.writes.turns[agent_id] = stamp
        lead.owner_id = agent_id
        lead.rule = rule if rule is not None else lead.rule
        initial = initial_rule if initial_rule is not None else rule
        status = initial_status or (
            initial.initial_status if initial is not None else LeadStatus.ASSIGNED
        )
        email = self._contact(agent_id)[0]
        self._change(
            lead,
            status,
            LeadEvent.Kind.ASSIGNED,
            f"assigned to {email or agent_id} ({method})" + (f": {note}" if note else ""),
            {"agent": email, "method": method, "rule": rule.name if rule else None},
        )
        lead.assigned_at = self.now
        lead.distribution_state = DistributionState.DONE
        lead.exception_reason = ""
        lead.held_until = None
        lead.sla_due_at = None
        if rule is not None and rule.contact_sla:
            schedule = self.book.snapshot(rule.pk)
            lead.sla_due_at = add_open_time(
                schedule.schedule if schedule else None, self.now, rule.contact_sla
            )
        self._touch(lead)
        rule_id = rule.pk if rule is not None else None
        self.writes.assignments.append(
            new_assignment(
                {"lead": lead, "rule": rule, "actor": self.actor},
                lead_id=lead.pk,
                agent_id=agent_id,
                rule_id=rule_id,
                pool_id=pool_id,
                method=method,
                actor_id=self.actor_id,
                created_at=self.now,
            )
        )
        if initial is not None and initial.initial_activity and not initial_status:
            self.writes.activities.append(
                new_activity(
                    {"lead": lead},
                    lead_id=lead.pk,
                    agent_id=agent_id,
                    kind=initial.initial_activity,
                    note=f"initial activity of rule {initial.name}",
                    created_at=self.now,
                )
            )
        self.writes.notices.append(
            new_notice(
                {"lead": lead},
                agent_id=agent_id,
                lead_id=lead.pk,
                created_at=self.now,
                message=f"Lead #{lead.pk} is yours.",
            )
        )
        self.writes.emails.append(
            Email(
                "lead_assigned",
                agent_id,
                lead.pk,
                {"rule": rule.name if rule else "", "manual": method == Method.MANUAL},
            )
        )

    def flush(self) -> None:
        if not self.dry_run:
            self.writes.flush()
        self.writes = Writes()
