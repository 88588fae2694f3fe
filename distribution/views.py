"""Server-rendered agent pages: thin views that authorise, call one service, render.

Mutations are POST-only with CSRF; each calls one service and redirects with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

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
    """Signed in, with an agent profile (managers without one get a clear 403)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not hasattr(request.user, "agent"):
            return HttpResponseForbidden("This page is for agents; ask a manager for a profile.")
        return view(request, *args, **kwargs)

    return wrapper


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
    """Open offers (with PINs), the Get lead button, and the agent's leads."""
    me = _me(request)
    return render(
        request,
        "agent/home.html",
        {
            "offers": selectors.offers_open_for_agent(agent=me),
            "leads": selectors.agent_leads(agent=me),
            "can_pull": selectors.agent_can_pull(agent=me),
            "unread": selectors.notices_unread_count(agent=me),
        },
    )


@agent_required
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    """A lead the agent owns, is offered, or sees in a hopper; activities and claim forms."""
    lead, offer = selectors.lead_for_agent(agent=_me(request), lead_id=lead_id)
    if lead is None:
        raise Http404("No such lead among yours.")
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
    """Leads waiting in the agent's hoppers, to cherry-pick."""
    return render(
        request,
        "agent/hopper.html",
        {"leads": selectors.hopper_leads_for_agent(agent=_me(request))},
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
    """The agent's notices: offers, assignments, leads claimed by others or taken back."""
    return render(
        request, "agent/inbox.html", {"notices": selectors.notices_for_agent(agent=_me(request))}
    )


@require_POST
@agent_required
def inbox_read(request: HttpRequest) -> HttpResponse:
    agent_work.notices_mark_read(agent=_me(request))
    return redirect("agent:inbox")
