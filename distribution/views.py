"""Server-rendered agent pages: thin views that authorise, call one service, render."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from leads import services as lead_services
from leads.models import Activity, Lead


def agent_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in, with an agent profile (managers without one get a clear 403)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not hasattr(request.user, "agent"):
            return HttpResponseForbidden("This page is for agents; ask a manager for a profile.")
        return view(request, *args, **kwargs)

    return wrapper


def _own_lead(request: HttpRequest, lead_id: int) -> Lead:
    lead = (Lead.objects.select_related("source", "campaign", "owner")
            .filter(pk=lead_id, owner=request.user).first())
    if lead is None:
        raise Http404("No such lead among yours.")
    return lead


@agent_required
def home(request: HttpRequest) -> HttpResponse:
    """The agent's leads, newest first."""
    leads = (Lead.objects.filter(owner=request.user).select_related("source", "campaign")
             .order_by("-assigned_at", "-id")[:200])
    return render(request, "agent/home.html", {"leads": leads})


@agent_required
def lead_detail(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = _own_lead(request, lead_id)
    activities = lead.activities.select_related("agent").all()[:100]
    return render(request, "agent/lead_detail.html",
                  {"lead": lead, "activities": activities, "kinds": Activity.Kind.choices})


@require_POST
@agent_required
def log_activity(request: HttpRequest, lead_id: int) -> HttpResponse:
    lead = _own_lead(request, lead_id)
    kind = request.POST.get("kind", "")
    if kind not in Activity.Kind.values:
        messages.error(request, "Choose what kind of activity to log.")
    else:
        lead_services.activity_log(lead=lead, agent=request.user, kind=kind,
                                   note=request.POST.get("note", "")[:2000])
        messages.success(request, "Activity logged.")
    return redirect("agent:lead", lead_id=lead.pk)
