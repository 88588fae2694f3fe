"""Admin for leads, sources and campaigns; usable at 100k leads (no N+1, indexed filters).

`LeadAdmin` is a base class here; distribution registers the Lead admin (see its docstring).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from leads.models import (
    Activity,
    Campaign,
    DistributionState,
    Lead,
    LeadEvent,
    LeadStatus,
    Source,
)
from leads.signals import lead_awaits_distribution, lead_changed


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    exclude = ("token_hash",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class WaitingFilter(admin.SimpleListFilter):
    """Buckets of how long a lead has been waiting since its last status change."""

    title = "waiting"
    parameter_name = "waiting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("15m", "more than 15 minutes"),
            ("1h", "more than 1 hour"),
            ("1d", "more than 1 day"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Lead]) -> QuerySet[Lead]:
        spans = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
        value = self.value()
        if value not in spans:
            return queryset
        return queryset.filter(
            status_changed_at__lt=timezone.now() - spans[value],
            status__in=[
                LeadStatus.PENDING,
                LeadStatus.HELD,
                LeadStatus.OFFERED,
                LeadStatus.WAITING,
                LeadStatus.UNASSIGNED,
                LeadStatus.EXCEPTION,
            ],
        )


class ActivityInline(admin.TabularInline):
    model = Activity
    extra = 0
    fields = ("created_at", "kind", "agent", "note")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("agent",)


class LeadEventInline(admin.TabularInline):
    model = LeadEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "message", "actor")
    readonly_fields = fields
    verbose_name_plural = "timeline"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LeadAdmin(admin.ModelAdmin):
    """The lead admin's base: fields, filters, the activities and the timeline.

    Registered by the app that distributes leads (distribution/admin/leads.py), which adds
    its inlines and actions in a subclass: one LeadAdmin, nothing patched at import time.
    """

    list_display = (
        "id",
        "full_name",
        "email",
        "source",
        "campaign",
        "status",
        "owner",
        "created_at",
    )
    list_display_links = ("id", "full_name")
    list_filter = ("status", "distribution_state", WaitingFilter, "source", "campaign")
    list_select_related = ("source", "campaign", "owner")
    search_fields = (
        "=id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "external_id",
        "company_name",
    )
    autocomplete_fields = ("owner", "duplicate_of")
    readonly_fields = (
        "created_at",
        "updated_at",
        "status_changed_at",
        "assigned_at",
        "email_normalized",
        "phone_normalized",
        "distribution_state",
    )
    date_hierarchy = "created_at"
    show_full_result_count = False  # no COUNT(*) over 100k rows on every page
    list_per_page = 50
    inlines = [ActivityInline, LeadEventInline]
    fieldsets = (
        (None, {"fields": ("status", "owner", "distribution_state", "exception_reason", "pin")}),
        (
            "Contact",
            {
                "fields": (
                    ("first_name", "last_name"),
                    ("email", "phone"),
                    ("company_name", "company_size"),
                )
            },
        ),
        ("Where", {"fields": (("postcode", "city", "country"), ("latitude", "longitude"))}),
        (
            "Origin",
            {
                "fields": (
                    ("source", "external_id"),
                    "campaign",
                    "duplicate_of",
                    ("assign_to_email", "assign_to_user_id"),
                    "attributes",
                )
            },
        ),
        (
            "Audit",
            {
                "fields": (
                    ("created_at", "updated_at"),
                    ("status_changed_at", "assigned_at"),
                    ("email_normalized", "phone_normalized"),
                )
            },
        ),
    )

    def save_model(self, request: HttpRequest, obj: Lead, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change and obj.distribution_state == DistributionState.PENDING:
            # a lead added by hand is queued on commit like one posted to the API
            lead_awaits_distribution.send(sender=Lead, lead_id=obj.pk, campaign_id=obj.campaign_id)
        if change and form.changed_data:
            trigger = "status_changed" if "status" in form.changed_data else "updated"
            lead_changed.send(sender=Lead, lead_id=obj.pk, trigger=trigger, actor=request.user)

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj: Lead) -> str:
        return obj.full_name or "—"


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "lead", "agent")
    list_filter = ("kind",)
    list_select_related = ("lead", "agent")
    search_fields = ("lead__email", "agent__email", "note")
    autocomplete_fields = ("lead", "agent")
    show_full_result_count = False
