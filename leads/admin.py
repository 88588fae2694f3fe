"""Admin for leads, sources and campaigns; usable at 100k leads (no N+1, indexed filters).

`LeadAdmin` is a base class here; distribution registers the Lead admin (see its docstring).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.errors import DomainError
from leads import services
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


class DuplicateInline(admin.TabularInline):
    """The original's duplicates, each linked, with its merge / unlink page."""

    model = Lead
    fk_name = "duplicate_of"
    extra = 0
    can_delete = False
    verbose_name = "duplicate"
    verbose_name_plural = "duplicates of this lead"
    fields = ("duplicate", "created_at", "status", "email", "phone", "owner", "manage")
    readonly_fields = fields
    ordering = ("created_at", "id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Lead]:
        return super().get_queryset(request).select_related("owner")

    @admin.display(description="lead")
    def duplicate(self, obj: Lead) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:leads_lead_change", args=[obj.pk]), str(obj)
        )

    @admin.display(description="")
    def manage(self, obj: Lead) -> str:
        if obj.status == LeadStatus.MERGED:
            return "merged"
        return format_html(
            '<a href="{}">merge into this lead</a> · <a href="{}">unlink</a>',
            reverse("admin:leads_lead_merge", args=[obj.pk]),
            reverse("admin:leads_lead_unlink", args=[obj.pk]),
        )


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
    autocomplete_fields = ("owner",)
    readonly_fields = (
        "duplicate_of",  # linked at ingestion; merged or unlinked by the actions (recorded)
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
    inlines = [DuplicateInline, ActivityInline, LeadEventInline]
    actions = ["merge_duplicates", "unlink_duplicates"]
    change_form_template = "admin/leads/lead/change_form.html"
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

    # --- duplicates: merge into the original, unlink ----------------------------------------
    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:lead_id>/merge/", view(self.merge_view), name="leads_lead_merge"),
            path("<int:lead_id>/unlink/", view(self.unlink_view), name="leads_lead_unlink"),
            *super().get_urls(),
        ]

    def _duplicate_view(self, request: HttpRequest, lead_id: int, *, merge: bool) -> HttpResponse:
        """Confirm (GET) and do (POST) a merge or an unlink of one duplicate."""
        lead = get_object_or_404(Lead.objects.select_related("duplicate_of"), pk=lead_id)
        if not self.has_change_permission(request, lead):
            raise PermissionDenied
        if request.method == "POST":
            action = services.lead_merge_duplicate if merge else services.lead_unlink_duplicate
            try:
                done = action(lead_id=lead.pk, actor=request.user)
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:leads_lead_change", args=[lead.pk]))
            self.message_user(
                request,
                f"Lead #{lead.pk} merged into lead #{done.pk}."
                if merge
                else f"Lead #{lead.pk} unlinked: it is an independent lead now.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:leads_lead_change", args=[done.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": ("Merge" if merge else "Unlink") + f" lead #{lead.pk}",
            "opts": self.model._meta,
            "lead": lead,
            "original": lead.duplicate_of,
            "merge": merge,
            "activities": lead.activities.count(),
            "events": lead.events.count(),
        }
        return TemplateResponse(request, "admin/leads/lead/duplicate_confirm.html", context)

    def merge_view(self, request: HttpRequest, lead_id: int) -> HttpResponse:
        return self._duplicate_view(request, lead_id, merge=True)

    def unlink_view(self, request: HttpRequest, lead_id: int) -> HttpResponse:
        return self._duplicate_view(request, lead_id, merge=False)

    def _each_duplicate(
        self, request: HttpRequest, queryset: QuerySet[Lead], action: Any, verb: str
    ) -> None:
        done, refused = 0, []
        for lead_id in queryset.values_list("pk", flat=True):
            try:
                action(lead_id=lead_id, actor=request.user)
                done += 1
            except DomainError as exc:
                refused.append(exc.detail)
        self.message_user(
            request, f"{verb} {done} duplicate{'' if done == 1 else 's'}.", messages.SUCCESS
        )
        for detail in refused[:10]:
            self.message_user(request, detail, messages.WARNING)

    @admin.action(
        description="Merge the selected duplicates into their originals", permissions=["change"]
    )
    def merge_duplicates(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        self._each_duplicate(request, queryset, services.lead_merge_duplicate, "Merged")

    @admin.action(
        description="Unlink the selected duplicates from their originals", permissions=["change"]
    )
    def unlink_duplicates(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        self._each_duplicate(request, queryset, services.lead_unlink_duplicate, "Unlinked")


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "lead", "agent")
    list_filter = ("kind",)
    list_select_related = ("lead", "agent")
    search_fields = ("lead__email", "agent__email", "note")
    autocomplete_fields = ("lead", "agent")
    show_full_result_count = False
