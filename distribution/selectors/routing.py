"""Reads for agent routing: what the API, the agent pages and the admin queues show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from distribution.engine.filters import match_filters
from distribution.loaders.routing import filters_of, lead_snapshots
from distribution.models import Notice, Offer, PoolMember, Rule, Strategy
from leads.models import Lead, LeadStatus

HOPPER_LIMIT = 200
HOPPER_PAGE = 50  # leads per hopper page (the agent page; the API lists HOPPER_LIMIT)


def rule_name_for_lead(lead: Lead) -> str | None:
    """The rule that routed the lead, if any."""
    if not lead.rule_id:
        return None
    rule = lead.rule
    return rule.name if rule is not None else None


def lead_offered_to(lead: Lead, user: Any) -> bool:
    """Whether the agent holds an open offer for the lead."""
    if not getattr(user, "pk", None):
        return False
    return Offer.objects.filter(lead=lead, agent_id=user.pk, status=Offer.Status.OPEN).exists()


def offers_open_for_agent(*, agent: User, now: datetime | None = None) -> list[Offer]:
    """The agent's open, unexpired offers, oldest first, with their leads."""
    now = now or timezone.now()
    return list(
        Offer.objects.filter(agent=agent, status=Offer.Status.OPEN)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("lead", "lead__campaign", "rule")
        .order_by("created_at", "id")
    )


def _hopper_memberships(agent: User) -> dict[int, PoolMember]:
    """The agent's active memberships of pools that enabled hopper rules use."""
    rows = PoolMember.objects.filter(
        agent=agent, active=True, pool__rules__enabled=True, pool__rules__strategy=Strategy.HOPPER
    ).distinct()
    return {m.pool_id: m for m in rows}


def _hopper_search(q: str) -> Q:
    """Every word of Q matches one of the lead's name, e-mail, phone or postcode."""
    found = Q()
    for word in q.split():
        # a phone number as dialled at home ("06 …") or with its country code ("+31 6 …")
        digits = "".join(ch for ch in word if ch.isdigit()).lstrip("0")
        term = (
            Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
            | Q(phone__icontains=word)
            | Q(postcode__icontains=word)
        )
        if len(digits) >= 3:
            term |= Q(phone_normalized__contains=digits)
        found &= term
    return found


def hopper_page_for_agent(
    *, agent: User, q: str = "", after: int | None = None, size: int = HOPPER_PAGE
) -> tuple[list[Lead], int | None]:
    """One page of the leads waiting in the hopper rules the agent belongs to and whose
    member filters the lead passes, oldest first; Q searches name, e-mail, phone and
    postcode. Keyset pages: AFTER is the last lead id of the previous page; answers the
    page and the id to continue after (None on the last page)."""
    memberships = _hopper_memberships(agent)
    if not memberships:
        return [], None
    leads = Lead.objects.filter(
        status=LeadStatus.WAITING,
        rule__strategy=Strategy.HOPPER,
        rule__enabled=True,
        rule__pool_id__in=list(memberships),
    )
    q = (q or "").strip()[:100]
    if q:
        leads = leads.filter(_hopper_search(q))
    if after is not None:
        anchor = Lead.objects.filter(pk=after).values_list("created_at", flat=True).first()
        if anchor is not None:
            leads = leads.filter(Q(created_at__gt=anchor) | Q(created_at=anchor, id__gt=after))
    leads = leads.select_related("source", "campaign", "rule").order_by("created_at", "id")
    # with the owner and action count when a member filter names them (1 query each a page)
    member_filters = [f for m in memberships.values() for f in filters_of(m.filters)]
    out: list[Lead] = []
    chunk, offset = max(2 * size, 100), 0
    while len(out) <= size:
        page = list(leads[offset : offset + chunk])
        if not page:
            break
        offset += chunk
        snaps = lead_snapshots(page, member_filters)
        for lead in page:
            pool_id = lead.rule.pool_id if lead.rule else None
            member = memberships.get(pool_id) if pool_id is not None else None
            if member is None:
                continue
            if member.filters and not match_filters(filters_of(member.filters), snaps[lead.pk])[0]:
                continue
            out.append(lead)
            if len(out) > size:
                break
    if len(out) > size:
        return out[:size], out[size - 1].pk
    return out, None


def hopper_leads_for_agent(
    *, agent: User, limit: int = HOPPER_LIMIT, q: str = "", after: int | None = None
) -> list[Lead]:
    """Leads waiting in the agent's hoppers, oldest first (the API's list: LIMIT of them,
    searched by Q, after the lead id AFTER)."""
    return hopper_page_for_agent(agent=agent, q=q, after=after, size=limit)[0]


def agent_can_pull(*, agent: User) -> bool:
    """Whether the agent belongs to a pool of an enabled pull rule (shows "Get lead")."""
    return PoolMember.objects.filter(
        agent=agent, active=True, pool__rules__enabled=True, pool__rules__strategy=Strategy.PULL
    ).exists()


def agent_leads(*, agent: User, limit: int = 200) -> QuerySet[Lead]:
    """The agent's own leads, most recently assigned first."""
    return (
        Lead.objects.filter(owner=agent)
        .select_related("source", "campaign")
        .order_by("-assigned_at", "-id")[:limit]
    )


def lead_for_agent(*, agent: User, lead_id: int) -> tuple[Lead | None, Offer | None]:
    """A lead the agent may see (owned, offered, or in their hopper) and their open offer."""
    lead = (
        Lead.objects.select_related("source", "campaign", "owner", "rule")
        .filter(pk=lead_id)
        .first()
    )
    if lead is None:
        return None, None
    offer = (
        Offer.objects.filter(lead=lead, agent=agent, status=Offer.Status.OPEN)
        .order_by("-created_at")
        .first()
    )
    if lead.owner_id == agent.pk or offer is not None:
        return lead, offer
    if (
        lead.status == LeadStatus.WAITING
        and lead.rule is not None
        and lead.rule.strategy == Strategy.HOPPER
        and lead.rule.pool_id in _hopper_memberships(agent)
    ):
        return lead, None
    return None, None


def lead_hold(lead: Lead) -> dict[str, Any] | None:
    """Why and until when a held lead waits: `{"until": datetime, "reason": str}`, or None
    when the lead is not held. Leads are held only after hours (the router's `hold`
    outcome: the rule's schedule is closed and its after-hours policy is `hold`)."""
    if lead.status != LeadStatus.HELD:
        return None
    rule = lead.rule if lead.rule_id else None
    if rule is None:
        reason = "after hours: waiting for the opening hours"
    else:
        schedule = rule.schedule if rule.schedule_id else None
        reason = f"after hours: rule {rule.name!r} is closed"
        if schedule is not None:
            reason += f" (schedule {schedule.name!r})"
    return {"until": lead.held_until, "reason": reason}


def lead_gone_for_agent(*, agent: User, lead_id: int) -> dict[str, Any] | None:
    """What became of a lead the agent was offered or told about (a notice) but may no
    longer open: `{"lead_id", "state": claimed_by_other|held|moved_on, "hold"}`; None when
    the agent never had anything to do with it (the page stays a 404)."""
    known = (
        Offer.objects.filter(lead_id=lead_id, agent=agent).exists()
        or Notice.objects.filter(lead_id=lead_id, agent=agent).exists()
    )
    if not known:
        return None
    lead = Lead.objects.select_related("rule", "rule__schedule").filter(pk=lead_id).first()
    if lead is None:
        return None
    if lead.owner_id is not None and lead.owner_id != agent.pk:
        state = "claimed_by_other"
    elif lead.status == LeadStatus.HELD:
        state = "held"
    else:
        state = "moved_on"
    return {"lead_id": lead.pk, "state": state, "hold": lead_hold(lead)}


def notices_for_agent(*, agent: User, limit: int = 50) -> list[Notice]:
    return list(
        Notice.objects.filter(agent=agent)
        .select_related("lead")
        .order_by("-created_at", "-id")[:limit]
    )


def notices_unread_count(*, agent: User) -> int:
    return Notice.objects.filter(agent=agent, read=False).count()


# --- manager queues ---------------------------------------------------------------------------


def assignment_queue() -> QuerySet[Lead]:
    """The Lead Assignment queue: leads no rule placed (unassigned) and Lead Exceptions
    (with their reason), no owner, oldest first (docs/decisions.md D13)."""
    return (
        Lead.objects.filter(
            status__in=[LeadStatus.UNASSIGNED, LeadStatus.EXCEPTION], owner__isnull=True
        )
        .select_related("source", "campaign", "rule")
        .order_by("created_at", "id")
    )


def exception_queue() -> QuerySet[Lead]:
    """The Lead Exception queue, with each lead's reason."""
    return (
        Lead.objects.filter(status=LeadStatus.EXCEPTION, owner__isnull=True)
        .select_related("source", "campaign", "rule")
        .order_by("created_at", "id")
    )


def hopper_queue() -> QuerySet[Lead]:
    """Every lead waiting in a hopper or pull queue (managers see them all)."""
    return (
        # marketplace leads also wait (for a window), but they are sold, not picked
        Lead.objects.filter(status=LeadStatus.WAITING, rule__strategy__in=["pull", "hopper"])
        .select_related("source", "campaign", "rule", "owner")
        .order_by("created_at", "id")
    )


def assignable_agents() -> QuerySet[User]:
    """Agents a manager may assign leads to (active profile), by e-mail."""
    return (
        User.objects.filter(agent__active=True, is_active=True)
        .select_related("agent")
        .order_by("email")
    )


def rules_with_counts() -> QuerySet[Rule]:
    return Rule.objects.select_related("pool", "schedule").annotate(
        waiting=Count("leads", filter=Q(leads__status__in=[LeadStatus.WAITING, LeadStatus.HELD]))
    )
