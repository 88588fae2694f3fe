"""Taking leads: offer claims (by button or PIN), declines, expiry, pull, hopper, and the
managers' Lead Assignment queue. Every claim takes the lead's claim lock without waiting
(distribution.db.locks.lead_claim_lock) and then locks the lead row; the first valid one
wins, and a claimer that finds another claim in progress loses at once (already_claimed)
instead of queueing behind the winner's transaction. Pulls skip locked leads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from accounts.models import AgentProfile, User
from distribution.caches.routing import routing_config, rulebook_load
from distribution.db.locks import lead_claim_lock, pools_lock
from distribution.engine import routing as engine
from distribution.engine.eligibility import check_member
from distribution.engine.types import Caps
from distribution.errors import AlreadyClaimed, NotAllowed, NotFound, OfferExpired
from distribution.loaders.routing import (
    LEAD_RELATED,
    lead_snapshots,
    locked_leads,
    memberships_load,
    pool_usages_load,
)
from distribution.models import DistributionAttempt, Notice, Offer, Rule, Strategy
from distribution.services.distribute import leads_next_round
from distribution.services.notify import Email
from distribution.services.router import Method, Router
from leads.models import OWNED_STATUSES, DistributionState, Lead, LeadEvent, LeadStatus

Trigger = DistributionAttempt.Trigger
PULL_LOOKAHEAD = 200  # waiting leads a pull considers (oldest first)
PULL_RETRIES = 20  # leads taken by concurrent pullers before this pull gives up


def _lock_lead(lead_id: int, *, claim: bool = False) -> Lead:
    """The lead, its row locked; when CLAIM, first its claim lock, tried without waiting:
    already_claimed at once while another claim of it is in progress."""
    if claim and not lead_claim_lock(lead_id):
        raise AlreadyClaimed("This lead has already been claimed.")
    lead = (
        Lead.objects.select_for_update(of=("self",))
        .select_related(*LEAD_RELATED)
        .filter(pk=lead_id)
        .first()
    )
    if lead is None:
        raise NotFound("No such lead.")
    return lead


def _lock_own_offer_lead(*, offer_id: int, agent: User, claim: bool = False) -> Lead:
    """The lead of AGENT's offer OFFER_ID, locked (see _lock_lead); 404 for no such offer,
    403 for another's."""
    head = Offer.objects.filter(pk=offer_id).values("lead_id", "agent_id").first()
    if head is None:
        raise NotFound("No such offer.")
    if head["agent_id"] != agent.pk:
        raise NotAllowed("This offer is not yours.", code="not_offered")
    return _lock_lead(head["lead_id"], claim=claim)


def _record(
    router: Router,
    lead: Lead,
    *,
    outcome: str,
    reason: str,
    agent: User,
    started: float,
    rule: Rule | None,
) -> None:
    router.writes.attempts.append(
        DistributionAttempt(
            lead=lead,
            trigger=router.trigger,
            rule_name=rule.name if rule else "",
            candidates=[
                {
                    "agent_id": agent.pk,
                    "agent": agent.email,
                    "rank": 1,
                    "reason": None,
                    "detail": outcome,
                }
            ],
            outcome=outcome,
            reason=reason,
            actor=router.actor,
            created_at=router.now,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    )


def _check_may_take(
    lead: Lead, rule: Rule | None, agent: User, now: datetime, *, hours: bool
) -> int | None:
    """Re-check the agent as a member of the rule's pool (active, available, filters, caps;
    their own hours only when HOURS); raises NotAllowed; returns the pool id."""
    if rule is None or rule.pool_id is None:
        return None
    snap = routing_config(now).snapshot(rule.pk)
    if snap is None:  # deleted since the lead was routed
        raise NotAllowed(f"Rule {rule.name!r} no longer exists.", code="not_member")
    caps: dict[int, Caps] = {}
    member = memberships_load(agent_id=agent.pk, rules=[snap], now=now, caps_out=caps).get(
        rule.pool_id
    )
    if member is None:
        raise NotAllowed(f"You are not in the pool of rule {rule.name!r}.", code="not_member")
    if not hours:
        snap = replace(snap, require_agent_hours=False)
    if caps:  # the pool's own caps: claimers of the pool take turns, so they hold exactly
        pools_lock(caps)
    usage = pool_usages_load(caps, [snap], now).get(rule.pool_id)
    lead_snap = lead_snapshots([lead], member.filters)[lead.pk]
    verdict = check_member(member, snap, lead_snap, now, pool=usage)
    if not verdict.eligible:
        raise NotAllowed(
            f"You may not take this lead: {verdict.detail or verdict.reason}.",
            code=verdict.reason or "forbidden",
        )
    return rule.pool_id


def _withdraw_others(
    router: Router,
    lead: Lead,
    *,
    keep: int | None,
    winner: User | None,
    by_manager: bool = False,
) -> int:
    """Close the lead's other open offers and tell those agents it was claimed (or, BY_MANAGER,
    assigned by a manager)."""
    open_offers = Offer.objects.filter(lead=lead, status=Offer.Status.OPEN)
    if keep is not None:
        open_offers = open_offers.exclude(pk=keep)
    others = list(open_offers.select_related("agent"))
    if not others:
        return 0
    Offer.objects.filter(pk__in=[o.pk for o in others]).update(
        status=Offer.Status.WITHDRAWN, closed_at=router.now
    )
    for offer in others:
        router.writes.notices.append(
            Notice(
                agent=offer.agent,
                lead=lead,
                created_at=router.now,
                message=f"Lead #{lead.pk} was assigned by a manager; your offer is withdrawn."
                if by_manager
                else f"Lead #{lead.pk} was claimed by another agent.",
            )
        )
        router.writes.emails.append(Email("offer_withdrawn", offer.agent_id, lead.pk))
    if lead.rule is not None and lead.rule.strategy == Strategy.BROADCAST:
        # the telephony side stops ringing the others
        router.writes.webhooks.append(
            {
                "event": "claimed",
                "lead": {"id": lead.pk},
                "agent": winner.email if winner is not None else None,
                "rule": lead.rule.name,
            }
        )
    return len(others)


def _claim(*, offer_id: int, lead_id: int, agent: User, method: str) -> Lead:
    """Claim one offer inside a transaction (see offer_claim)."""
    started = time.perf_counter()
    now = timezone.now()
    lead = _lock_lead(lead_id, claim=True)
    offer = Offer.objects.select_related("rule").get(pk=offer_id)
    if offer.status == Offer.Status.CLAIMED and lead.owner_id == agent.pk:
        return lead  # a repeated click: already yours
    if (
        offer.status == Offer.Status.WITHDRAWN
        or lead.owner_id is not None
        or lead.status != LeadStatus.OFFERED
    ):
        raise AlreadyClaimed("This lead has already been claimed.")
    if offer.status == Offer.Status.DECLINED:
        raise NotAllowed("You declined this lead.", code="declined")
    if offer.status == Offer.Status.EXPIRED or (
        offer.expires_at is not None and offer.expires_at <= now
    ):
        raise OfferExpired("This offer has expired.")
    rule = offer.rule
    _check_may_take(lead, rule, agent, now, hours=False)
    router = Router(now=now, trigger=Trigger.CLAIM, actor=agent)
    router.users[agent.pk] = agent
    offer.status, offer.closed_at = Offer.Status.CLAIMED, now
    offer.save(update_fields=["status", "closed_at"])
    withdrawn = _withdraw_others(router, lead, keep=offer.pk, winner=agent)
    router.assign(
        lead,
        agent_id=agent.pk,
        rule=rule,
        method=method,
        note=f"claimed by {agent.email}" + (" with the PIN" if method == Method.PIN else ""),
    )
    router.writes.events.append(
        LeadEvent(
            lead=lead,
            kind=LeadEvent.Kind.CLAIMED,
            actor=agent,
            created_at=now,
            message=f"claimed by {agent.email}; {withdrawn} other offer(s) withdrawn",
        )
    )
    _record(
        router,
        lead,
        outcome="claimed",
        agent=agent,
        started=started,
        rule=rule,
        reason=f"Claimed by {agent.email} ({method}); {withdrawn} other offer(s) "
        "withdrawn and those agents told.",
    )
    router.flush()
    return lead


def offer_claim(*, offer_id: int, agent: User, method: str = Method.CLAIM) -> Lead:
    """Claim an offer: the first valid claim wins (the lead's claim lock, then its row);
    the others get already_claimed at once, an expired one offer_expired; the other offers
    are withdrawn and their agents told.

    1. Read the offer and its lead's owner outside any transaction (1 query): an offer
       already claimed by another, withdrawn or expired answers at once — no BEGIN, no
       lock, no ROLLBACK (the losers of a race that come after the winner's commit).
    2. Otherwise in a transaction: the lead's claim lock without waiting (the losers that
       come while the winner claims), its row, then the checks against the locked rows.
    """
    head = (
        Offer.objects.filter(pk=offer_id)
        .values("lead_id", "agent_id", "status", "lead__owner_id")
        .first()
    )
    if head is None:
        raise NotFound("No such offer.")
    if head["agent_id"] != agent.pk:
        raise NotAllowed("This offer is not yours.", code="not_offered")
    status, owner_id = head["status"], head["lead__owner_id"]
    if status == Offer.Status.WITHDRAWN or (
        status == Offer.Status.CLAIMED and owner_id != agent.pk
    ):
        raise AlreadyClaimed("This lead has already been claimed.")
    if status == Offer.Status.EXPIRED:
        raise OfferExpired("This offer has expired.")
    with transaction.atomic():
        return _claim(offer_id=offer_id, lead_id=head["lead_id"], agent=agent, method=method)


def offer_claim_by_pin(*, agent: User, pin: str) -> Lead:
    """Claim the lead offered to the agent whose PIN the agent gives (seed 001 phone claim)."""
    pin = (pin or "").strip()
    offers = Offer.objects.filter(agent=agent, lead__pin=pin).annotate(
        open_first=Case(
            When(status=Offer.Status.OPEN, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )
    offer = offers.order_by("open_first", "-created_at").first() if pin else None
    if offer is None:
        raise NotAllowed("No lead with this PIN is offered to you.", code="not_offered")
    return offer_claim(offer_id=offer.pk, agent=agent, method=Method.PIN)


def offer_decline(*, offer_id: int, agent: User) -> Lead:
    """Decline an offer: the decliner is not offered the lead again; when no other offer
    of it is open, it goes to the next in line at once."""
    with transaction.atomic():
        lead = _lock_own_offer_lead(offer_id=offer_id, agent=agent)
        offer = Offer.objects.get(pk=offer_id)
        if offer.status == Offer.Status.DECLINED:
            return lead
        if offer.status != Offer.Status.OPEN:
            if offer.status == Offer.Status.EXPIRED:
                raise OfferExpired("This offer has expired.")
            raise AlreadyClaimed("This lead has already been claimed.")
        now = timezone.now()
        offer.status, offer.closed_at = Offer.Status.DECLINED, now
        offer.save(update_fields=["status", "closed_at"])
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.NOTE,
            actor=agent,
            message=f"offer declined by {agent.email}",
        )
        still_open = Offer.objects.filter(lead=lead, status=Offer.Status.OPEN).exists()
        if not still_open and lead.status == LeadStatus.OFFERED:
            leads_next_round(leads=[lead], trigger=Trigger.DECLINE)
    return lead


def offers_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire overdue offers and move each lead on (next in line, next batch, fallback).

    1. Take overdue open offers with `FOR UPDATE SKIP LOCKED` (several sweepers share work).
    2. Lock their leads, skipping any being claimed right now (the next sweep gets them).
    3. Mark the overdue offers expired; a lead with no open offer left gets its next round.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Offer.objects.select_for_update(skip_locked=True)
            .filter(status=Offer.Status.OPEN, expires_at__lte=now)
            .order_by("expires_at", "id")
            .values_list("pk", "lead_id")[:limit]
        )
        if not due:
            return 0
        leads = locked_leads(sorted({lead_id for _, lead_id in due}), skip_locked=True)
        if not leads:
            return 0
        ids = [lead.pk for lead in leads]
        expired = Offer.objects.filter(
            lead_id__in=ids, status=Offer.Status.OPEN, expires_at__lte=now
        ).update(status=Offer.Status.EXPIRED, closed_at=now)
        still_open = set(
            Offer.objects.filter(lead_id__in=ids, status=Offer.Status.OPEN).values_list(
                "lead_id", flat=True
            )
        )
        moving = [
            lead
            for lead in leads
            if lead.pk not in still_open and lead.status == LeadStatus.OFFERED
        ]
        LeadEvent.objects.bulk_create(
            LeadEvent(
                lead=lead,
                kind=LeadEvent.Kind.EXPIRED,
                created_at=now,
                message="offer round expired unclaimed",
            )
            for lead in moving
        )
        if moving:
            leads_next_round(
                leads=moving, trigger=Trigger.EXPIRY, router=Router(now=now, trigger=Trigger.EXPIRY)
            )
    return expired


def lead_pull(*, agent: User) -> Lead | None:
    """ "Get lead": the oldest waiting lead of the agent's pull rules, within the daily
    allotment; None when there is nothing the agent may pull."""
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        # one pull at a time per agent, so the allotment holds exactly
        if not list(
            AgentProfile.objects.select_for_update().filter(user=agent).values_list("pk", flat=True)
        ):
            raise NotAllowed("Only agents pull leads.", code="not_agent")
        book = rulebook_load(now)
        rules = [
            r
            for r in book.snapshots
            if r.enabled and r.strategy == Strategy.PULL and r.pool_id is not None
        ]
        caps: dict[int, Caps] = {}
        memberships = memberships_load(agent_id=agent.pk, rules=rules, now=now, caps_out=caps)
        rules = [r for r in rules if r.pool_id in memberships]
        if caps:  # pools with their own caps: pullers of a pool take turns
            pools_lock(caps)
        usages = pool_usages_load(caps, rules, now)
        if not rules:
            return None
        by_id = {r.id: r for r in rules}
        passed: set[int] = set()
        lead = None
        for _ in range(PULL_RETRIES):
            # read without locks, so that concurrent pullers see the same queue; then lock
            # only the chosen lead (skipping it if another puller got there first)
            waiting = list(
                Lead.objects.select_related(*LEAD_RELATED)
                .filter(status=LeadStatus.WAITING, owner__isnull=True, rule_id__in=list(by_id))
                .exclude(pk__in=passed)
                .order_by("created_at", "id")[:PULL_LOOKAHEAD]
            )
            member_filters = [f for m in memberships.values() for f in m.filters]
            snaps = lead_snapshots(waiting, member_filters)
            pairs = [(by_id[w.rule_id], snaps[w.pk]) for w in waiting if w.rule_id in by_id]
            decision = engine.choose_pull(memberships, pairs, now, pools=usages)
            if decision.lead_id is None:
                return None
            lead = (
                Lead.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related(*LEAD_RELATED)
                .filter(pk=decision.lead_id, status=LeadStatus.WAITING, owner__isnull=True)
                .first()
            )
            if lead is not None:
                break
            passed.add(decision.lead_id)
        if lead is None:
            return None
        rule = book.models[lead.rule_id] if lead.rule_id else None
        router = Router(now=now, trigger=Trigger.PULL, actor=agent, book=book)
        router.users[agent.pk] = agent
        router.assign(
            lead, agent_id=agent.pk, rule=rule, method=Method.PULL, note=f"pulled by {agent.email}"
        )
        _record(
            router,
            lead,
            outcome="pulled",
            agent=agent,
            started=started,
            rule=rule,
            reason=decision.reason
            + (f"; {len(decision.skipped)} older lead(s) passed" if decision.skipped else ""),
        )
        router.flush()
    return lead


def hopper_claim(*, agent: User, lead_id: int) -> Lead:
    """Cherry-pick a lead from the hopper: atomic, the first pick wins; the others get
    already_claimed at once."""
    started = time.perf_counter()
    now = timezone.now()
    with transaction.atomic():
        lead = _lock_lead(lead_id, claim=True)
        rule = Rule.objects.filter(pk=lead.rule_id).first() if lead.rule_id else None
        in_hopper = rule is not None and rule.strategy == Strategy.HOPPER
        if lead.owner_id == agent.pk and lead.status != LeadStatus.WAITING:
            return lead  # a repeated click: already yours
        if not in_hopper:
            if lead.owner_id is not None:
                raise AlreadyClaimed("This lead has already been taken.")
            raise NotAllowed("This lead is not in a hopper.", code="not_in_hopper")
        if lead.status != LeadStatus.WAITING:
            raise AlreadyClaimed("This lead has already been taken.")
        _check_may_take(lead, rule, agent, now, hours=False)
        router = Router(now=now, trigger=Trigger.CLAIM, actor=agent)
        router.users[agent.pk] = agent
        router.assign(
            lead,
            agent_id=agent.pk,
            rule=rule,
            method=Method.HOPPER,
            note=f"picked from the hopper by {agent.email}",
        )
        _record(
            router,
            lead,
            outcome="hopper_claimed",
            agent=agent,
            started=started,
            rule=rule,
            reason=f"Picked from the hopper of rule {rule.name!r} by {agent.email}."
            if rule
            else "Picked from the hopper.",
        )
        router.flush()
    return lead


class Via:
    """Where a manager assigned a lead by hand (it is named in the lead's history)."""

    QUEUE = "the Lead Assignment queue"
    LEAD_FORM = "the lead's admin form"
    BULK = "a bulk action on the lead list"


def _withdraw_for_manual(router: Router, lead: Lead, *, agent: User | None) -> int:
    """Close the lead's open offers; their agents are told another agent has it."""
    return _withdraw_others(router, lead, keep=None, winner=agent, by_manager=True)


def leads_assign_manually(
    *,
    lead_ids: Sequence[int],
    agent: User | None,
    actor: User | None = None,
    via: str = Via.QUEUE,
) -> int:
    """Assign leads by hand — the one way a manager does it (the queues, the lead form, the
    bulk action): an assignment row, the agent's round-robin turn moved (seed 003: manual
    assignment counts), open offers withdrawn and their agents told, any hold cleared, the
    rule's initial status and activity for a lead entering the pipeline (an owned lead being
    worked keeps its status), the assigned e-mail, and the history naming who did it and
    where. AGENT None takes the leads back to the Lead Assignment queue. Leads the agent
    owns already are left alone. Returns how many leads changed hands.

    1. Lock the leads (id order), skip those already the agent's.
    2. Withdraw their open offers (notice + e-mail to each offered agent).
    3. Assign through the Router (or unassign), record one attempt per lead, flush.
    """
    started = time.perf_counter()
    if agent is not None and not hasattr(agent, "agent"):
        raise NotAllowed(f"{agent} has no agent profile.", code="not_agent")
    who = actor.email if actor is not None and actor.email else "a manager"
    with transaction.atomic():
        leads = [
            lead
            for lead in locked_leads(list(lead_ids))
            if agent is None or lead.owner_id != agent.pk
        ]
        if agent is None:
            leads = [lead for lead in leads if lead.owner_id is not None]
        merged = [lead.pk for lead in leads if lead.status == LeadStatus.MERGED]
        if merged:
            raise NotAllowed(
                f"Lead #{merged[0]} was merged into its original; assign the original.",
                code="merged",
            )
        # the leads' rules and owners in one query each, not one per lead
        rules = Rule.objects.in_bulk({lead.rule_id for lead in leads if lead.rule_id})
        owners = User.objects.in_bulk({lead.owner_id for lead in leads if lead.owner_id})
        for lead in leads:
            lead.rule = rules.get(lead.rule_id) if lead.rule_id else None
            lead.owner = owners.get(lead.owner_id) if lead.owner_id else None
        router = Router(trigger=Trigger.MANUAL, actor=actor)
        if agent is not None:
            router.users[agent.pk] = agent
        for lead in leads:
            withdrawn = _withdraw_for_manual(router, lead, agent=agent)
            gone = f"; {withdrawn} open offer(s) withdrawn" if withdrawn else ""
            if agent is None:
                _take_back(router, lead, who=who, via=via)
                continue
            rule = lead.rule
            working = lead.status in OWNED_STATUSES and lead.owner_id is not None
            router.assign(
                lead,
                agent_id=agent.pk,
                rule=None,
                method=Method.MANUAL,
                # a lead being worked keeps its status; one entering the pipeline gets the
                # initial status and activity of the rule that routed it
                initial_status=lead.status if working else None,
                initial_rule=rule if rule is not None and rule.strategy != Strategy.NONE else None,
                note=f"assigned to {agent.email} by {who} from {via}",
            )
            _record(
                router,
                lead,
                outcome="manual",
                agent=agent,
                started=started,
                rule=None,
                reason=f"Assigned to {agent.email} by {who} from {via}{gone}.",
            )
        router.flush()
    return len(leads)


def _take_back(router: Router, lead: Lead, *, who: str, via: str) -> None:
    """Take a lead from its owner into the Lead Assignment queue (recorded, owner told)."""
    previous = lead.owner
    lead.owner_id = None
    lead.distribution_state = DistributionState.DONE
    lead.held_until = None
    lead.sla_due_at = None
    lead.exception_reason = ""
    message = f"taken back from {previous.email if previous else 'its owner'} by {who} from {via}"
    event = lead.transition_to(LeadStatus.UNASSIGNED, by=router.actor, note=message)
    router.writes.events.append(
        event or LeadEvent(lead=lead, kind=LeadEvent.Kind.NOTE, actor=router.actor, message=message)
    )
    lead.updated_at = router.now
    router.writes.leads[lead.pk] = lead
    if previous is not None:
        router.writes.notices.append(
            Notice(
                agent=previous,
                lead=lead,
                created_at=router.now,
                message=f"Lead #{lead.pk} was taken back by {who}.",
            )
        )
    router.writes.attempts.append(
        DistributionAttempt(
            lead=lead,
            trigger=router.trigger,
            rule_name="",
            candidates=[],
            outcome="unassigned",
            reason=f"Taken back from {previous.email if previous else 'its owner'} by {who} "
            f"from {via}; it waits in the Lead Assignment queue.",
            actor=router.actor,
            created_at=router.now,
            duration_ms=0.0,
        )
    )
