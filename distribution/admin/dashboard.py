"""The managers' dashboard (`/admin/dashboard/`): lead flow, queues, agents, turnover."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from distribution.selectors.dashboard import dashboard_figures


def dashboard_view(request: HttpRequest) -> HttpResponse:
    try:
        days = max(1, min(int(request.GET.get("days", 14)), 90))
    except ValueError:
        days = 14
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "days": days,
        "figures": dashboard_figures(days=days),
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
