"""Admin for the telephony webhook's log: every attempt, read-only — on the lead's page (an
inline) and as a list filterable by outcome."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from distribution.models import WebhookAttempt

FIELDS = (
    "created_at",
    "event",
    "attempt",
    "status_code",
    "error",
    "outcome",
    "duration_ms",
    "url",
)


class _ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class WebhookAttemptInline(_ReadOnly, admin.TabularInline):
    """The lead's webhook attempts: what was sent when, what came back, what follows."""

    model = WebhookAttempt
    extra = 0
    fields = FIELDS
    readonly_fields = FIELDS
    ordering = ("-created_at", "-id")
    verbose_name_plural = "webhook attempts"


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ("created_at", "lead", "event", "attempt", "status_code", "error", "outcome")
    list_filter = ("outcome", "event")
    list_select_related = ("lead",)
    search_fields = ("=lead__id", "url", "error")
    readonly_fields = ("lead", *FIELDS)
    date_hierarchy = "created_at"
    show_full_result_count = False
