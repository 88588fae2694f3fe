"""Admin for the delivery log (DESIGN §4 "Delivery to buyers"): every attempt, read-only —
on the outbound lead's page and the lead's page (inlines) and as a list filterable by
outcome."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from distribution.admin.notify import _ReadOnly
from distribution.models import DeliveryAttempt

FIELDS: tuple[str, ...] = (
    "created_at",
    "attempt",
    "method",
    "url",
    "outcome",
    "reason",
    "status_code",
    "duration_ms",
    "request",
    "answer",
)


class _Shown:
    @admin.display(description="request (headers minus secrets, body)")
    def request(self, obj: DeliveryAttempt) -> str:
        headers = json.dumps(obj.request_headers, indent=1, sort_keys=True)
        return format_html(
            '<pre style="white-space:pre-wrap;max-width:40em">{}\n\n{}</pre>',
            headers,
            obj.request_body,
        )

    @admin.display(description="answer (first 2 KB)")
    def answer(self, obj: DeliveryAttempt) -> str:
        return format_html(
            '<pre style="white-space:pre-wrap;max-width:40em">{}</pre>', obj.response_body or "—"
        )


class DeliveryAttemptInline(_Shown, _ReadOnly, admin.TabularInline):
    """An outbound lead's delivery attempts: what was sent, what the buyer answered."""

    model = DeliveryAttempt
    fk_name = "outbound"
    extra = 0
    fields = FIELDS
    readonly_fields = FIELDS
    ordering = ("-created_at", "-id")
    verbose_name_plural = "delivery attempts"


class LeadDeliveryAttemptInline(DeliveryAttemptInline):
    """The same log on the inbound lead's page, beside its distribution attempts."""

    fk_name = "lead"
    fields = ("outbound", *FIELDS)
    readonly_fields = ("outbound", *FIELDS)
    verbose_name_plural = "deliveries to buyers"


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(_Shown, _ReadOnly, admin.ModelAdmin):
    list_display = (
        "created_at",
        "outbound",
        "attempt",
        "method",
        "outcome",
        "reason",
        "status_code",
        "duration_ms",
    )
    list_filter = ("outcome", "method", "outbound__contract")
    list_select_related = ("outbound__contract", "outbound__lead")
    search_fields = ("=lead__id", "=outbound__id", "url", "reason")
    readonly_fields = ("outbound", "lead", *FIELDS)
    exclude = ("request_headers", "request_body", "response_body")
    date_hierarchy = "created_at"
    show_full_result_count = False
