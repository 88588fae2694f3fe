"""The managers' dashboard (`/admin/dashboard/`): lead flow, queues, agents, turnover, the
pipeline's lag and speed to lead."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from config.health import broker_queue_depths
from distribution.admin.adapters import permission_required
from distribution.selectors.dashboard import dashboard_figures, dashboard_pipeline, dashboard_speed


@permission_required("leads.view_lead")
def dashboard_view(request: HttpRequest) -> HttpResponse:
    try:
        days = max(1, min(int(request.GET.get("days", 14)), 90))
    except ValueError:
        days = 14
    now = timezone.now()
    figures = dashboard_figures(days=days)
    figures["speed"] = dashboard_speed(now=now)
    figures["pipeline"] = dashboard_pipeline(now=now, depths=broker_queue_depths())
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "days": days,
        "figures": figures,
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
