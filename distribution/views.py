"""Server-rendered agent pages: thin views that authorise, call one service, render.

Mutations are POST-only with CSRF; each calls one service and redirects with a message.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from distribution.errors import DistributionError
from distribution.selectors import routing as selectors
from distribution.services import agent_work, claims
from leads import services as lead_services
from leads.models import Activity, Lead, LeadStatus

AGENT_STATUSES = [
    (s.value, s.label)
    for s in (
        LeadStatus.WORKING,
        LeadStatus.CONTACTED,
        LeadStatus.QUALIFIED,
        LeadStatus.CONVERTED,
        LeadStatus.LOST,
    )
]


def agent_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, with an agent profile (managers without one get a clear 403); the page
    is rendered in the agent's own time zone (`AgentProfile.timezone`)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not hasattr(request.user, "agent"):
            return HttpResponseForbidden("This page is for agents; ask a manager for a profile.")
        with timezone.override(_zone(request.user.agent.timezone)):
            return view(request, *args, **kwargs)

    return wrapper


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _live(request: HttpRequest) -> dict[str, Any]:
    """What the live (polling) parts of a page need: the poll interval, the server's now."""
    return {
        "poll_ms": int(settings.AGENT_POLL_SECONDS * 1000),
        "server_now": timezone.now(),
        "available": request.user.agent.available,  # type: ignore[union-attr]
    }


def _me(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _own_lead(request: HttpRequest, lead_id: int) -> Lead:
    lead = (
        Lead.objects.select_related("source", "campaign", "owner")
        .filter(pk=lead_id, owner=_me(request))
        .first()
    )
    if lead is None:
        raise Http404("No such lead among yours.")
    return lead


def _run(request: HttpRequest, fn: Callable[..., Any], success: str, **kwargs: Any) -> Any:
    """Call a service; a refusal (already claimed, expired, not allowed) becomes a message."""
    try:
        result = fn(**kwargs)
    except DistributionError as exc:
        messages.error(request, exc.detail)
        return None
    if success:
        messages.success(request, success)
    return result


@agent_required
def home(request: HttpRequest) -> HttpResponse:
    """Open offers (with PINs, live), available / away, the Get lead button, the agent's
    leads."""
    me = _me(request)
    return render(
        request,
        "agent/home.html",
        {
            "offers": selectors.offers_open_for_agent(agent=me),
            "leads": selectors.agent_leads(agent=me),
            "can_pull": selectors.agent_can_pull(agent=me),
            "unread": selectors.notices_unread_count(agent=me),
            **_live(request),
        },
    )


@require_GET
@agent_required
def offers_live(request: HttpRequest) -> HttpResponse:
    """The open offers as an HTML fragment: the home page polls it (no reload)."""
    me = _me(request)
    return render(
        request,
        "agent/_offers.html",
        {
            "offers": selectors.offers_open_for_agent(agent=me),
            "unread": selectors.notices_unread_count(agent=me),
            **_live(request),
        },
    )


@require_POST
@agent_required
def set_availability(request: HttpRequest) -> HttpResponse:
    """The agent sets themself available or away (away: no offers, open ones handed back)."""
    available = request.POST.get("available") == "1"
    result = _run(
        request, agent_work.agent_set_available, "", agent=_me(request), available=available
    )
    if result is not None:
        _, handed_back = result
        if available:
            messages.success(request, "You are available: new leads come to you.")
        else:
            text = "You are away: no leads are offered to you until you are available again."
            if handed_back:
                text += f" {handed_back} open offer(s) went to the next in line."
            messages.success(request, text)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    return redirect(target or "agent:home")


@agent_required
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    """A lead the agent owns, is offered, or sees in a hopper; activities and claim forms.
    A lead the agent was offered or told about but may no longer open (claimed by someone
    else, held, moved on) gets a page saying so instead of a 404."""
    lead, offer = selectors.lead_for_agent(agent=_me(request), lead_id=lead_id)
    if lead is None:
        gone = selectors.lead_gone_for_agent(agent=_me(request), lead_id=lead_id)
        if gone is None:
            raise Http404("No such lead among yours.")
        return render(request, "agent/lead_gone.html", gone)
    mine = lead.owner_id == request.user.pk
    activities = lead.activities.select_related("agent").all()[:100] if mine else []
    return render(
        request,
        "agent/lead_detail.html",
        {
            "lead": lead,
            "offer": offer,
            "mine": mine,
            "activities": activities,
            "kinds": Activity.Kind.choices,
            "statuses": AGENT_STATUSES,
            "in_hopper": not mine and offer is None,
            "hold": selectors.lead_hold(lead),
            **_live(request),
        },
    )


@require_POST
@agent_required
def log_activity(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = _own_lead(request, lead_id)
    kind = request.POST.get("kind", "")
    if kind not in Activity.Kind.values:
        messages.error(request, "Choose what kind of activity to log.")
    else:
        lead_services.activity_log(
            lead=lead, agent=request.user, kind=kind, note=request.POST.get("note", "")[:2000]
        )
        messages.success(request, "Activity logged.")
    return redirect("agent:lead", lead_id=lead.pk)


@require_POST
@agent_required
def set_status(request: HttpRequest, lead_id: int) -> HttpResponse:
    """The owner moves the lead along the sales pipeline (automations may fire)."""
    lead = _own_lead(request, lead_id)
    _run(
        request,
        agent_work.lead_status_update,
        "Status updated.",
        lead_id=lead.pk,
        agent=_me(request),
        status=request.POST.get("status", ""),
    )
    return redirect("agent:lead", lead_id=lead.pk)


@require_POST
@agent_required
def claim_offer(request: HttpRequest, offer_id: int) -> HttpResponse:
    lead = _run(
        request, claims.offer_claim, "The lead is yours.", offer_id=offer_id, agent=_me(request)
    )
    return redirect("agent:lead", lead_id=lead.pk) if lead else redirect("agent:home")


@require_POST
@agent_required
def decline_offer(request: HttpRequest, offer_id: int) -> HttpResponse:
    _run(
        request,
        claims.offer_decline,
        "Offer declined; it goes to the next agent.",
        offer_id=offer_id,
        agent=_me(request),
    )
    return redirect("agent:home")


@require_POST
@agent_required
def claim_pin(request: HttpRequest) -> HttpResponse:
    """The phone claim: the lead's PIN, as the caller reads it out."""
    lead = _run(
        request,
        claims.offer_claim_by_pin,
        "The lead is yours.",
        agent=_me(request),
        pin=request.POST.get("pin", ""),
    )
    return redirect("agent:lead", lead_id=lead.pk) if lead else redirect("agent:home")


@require_POST
@agent_required
def pull(request: HttpRequest) -> HttpResponse:
    """The Get lead button."""
    lead = _run(request, claims.lead_pull, "", agent=_me(request))
    if lead is None:
        if not list(messages.get_messages(request)):
            messages.info(request, "No lead is waiting for you right now.")
        return redirect("agent:home")
    messages.success(request, f"Lead #{lead.pk} is yours.")
    return redirect("agent:lead", lead_id=lead.pk)


@agent_required
def hopper(request: HttpRequest) -> HttpResponse:
    """Leads waiting in the agent's hoppers, to cherry-pick: searched (`q`: name, e-mail,
    phone, postcode) and paged (`after`: the last lead id of the previous page)."""
    q = request.GET.get("q", "").strip()
    after_raw = request.GET.get("after", "")
    after = int(after_raw) if after_raw.isdigit() else None
    leads, next_after = selectors.hopper_page_for_agent(agent=_me(request), q=q, after=after)
    return render(
        request,
        "agent/hopper.html",
        {"leads": leads, "q": q, "after": after, "next_after": next_after},
    )


@require_POST
@agent_required
def hopper_claim(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = _run(
        request, claims.hopper_claim, "The lead is yours.", agent=_me(request), lead_id=lead_id
    )
    return redirect("agent:lead", lead_id=lead.pk) if lead else redirect("agent:hopper")


@agent_required
def inbox(request: HttpRequest) -> HttpResponse:
    """The agent's notices: offers, assignments, leads claimed by others or taken back
    (the list polls `inbox_live`)."""
    me = _me(request)
    return render(
        request,
        "agent/inbox.html",
        {
            "notices": selectors.notices_for_agent(agent=me),
            "unread": selectors.notices_unread_count(agent=me),
            **_live(request),
        },
    )


@require_GET
@agent_required
def inbox_live(request: HttpRequest) -> HttpResponse:
    """The notices as an HTML fragment (the inbox polls it)."""
    me = _me(request)
    return render(
        request,
        "agent/_notices.html",
        {
            "notices": selectors.notices_for_agent(agent=me),
            "unread": selectors.notices_unread_count(agent=me),
            **_live(request),
        },
    )


@require_POST
@agent_required
def inbox_read(request: HttpRequest) -> HttpResponse:
    agent_work.notices_mark_read(agent=_me(request))
    return redirect("agent:inbox")
