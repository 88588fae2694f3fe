"""Admin for buyers: companies with their locations, contract groups and contracts."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from crm.models import Company, Contract, ContractGroup, DeliveryInterval, Location
from distribution import services


class LocationInline(admin.TabularInline):
    model = Location
    extra = 1
    fields = ("name", "latitude", "longitude")


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "location_count", "contract_count", "created_at")
    list_filter = ("active",)
    search_fields = ("name",)
    inlines = [LocationInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Company]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_locations=Count("locations", distinct=True),
                n_contracts=Count("contracts", distinct=True),
            )
        )

    @admin.display(description="locations", ordering="n_locations")
    def location_count(self, obj: Any) -> int:
        return int(obj.n_locations)

    @admin.display(description="contracts", ordering="n_contracts")
    def contract_count(self, obj: Any) -> int:
        return int(obj.n_contracts)


@admin.register(ContractGroup)
class ContractGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


class DeliveryIntervalInline(admin.TabularInline):
    model = DeliveryInterval
    extra = 0
    fields = ("weekday", "start", "end")
    verbose_name_plural = "delivery hours (none: any time; in the contract's time zone)"


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "company",
        "campaign",
        "price",
        "quality_score",
        "trial",
        "active",
        "paused",
        "max_share_count",
        "caps",
        "radius_km",
        "last_outbound_at",
    )
    list_filter = ("active", "paused", "trial", "campaign")
    list_select_related = ("company", "campaign", "group")
    search_fields = ("name", "company__name")
    autocomplete_fields = ("company", "campaign", "group")
    readonly_fields = ("last_outbound_at", "created_at", "updated_at")
    inlines = [DeliveryIntervalInline]
    actions = ["pause_contracts", "resume_contracts"]
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    ("company", "group"),
                    "campaign",
                    ("price", "quality_score"),
                    ("trial", "active", "paused"),
                )
            },
        ),
        ("Dates and area", {"fields": (("starts", "ends"), "radius_km", "timezone")}),
        (
            "Sharing and caps",
            {
                "fields": (
                    "max_share_count",
                    ("cap_day", "cap_week", "cap_month"),
                    ("budget_day", "budget_week", "budget_month"),
                )
            },
        ),
        ("Lead requirements", {"fields": ("max_lead_age", "min_lead_score")}),
        ("Returns", {"fields": ("return_window",)}),
        ("Audit", {"fields": ("last_outbound_at", ("created_at", "updated_at"))}),
    )

    @admin.display(description="caps (day/week/month)")
    def caps(self, obj: Contract) -> str:
        counts = "/".join(
            "–" if v is None else str(v) for v in (obj.cap_day, obj.cap_week, obj.cap_month)
        )
        budgets = [v for v in (obj.budget_day, obj.budget_week, obj.budget_month) if v is not None]
        return counts + (" · budget" if budgets else "")

    def _set_paused(self, request: HttpRequest, queryset: QuerySet[Contract], paused: bool) -> None:
        service = services.contract_pause if paused else services.contract_resume
        done = 0
        for contract_id in queryset.values_list("id", flat=True):
            service(contract_id=contract_id, actor=request.user)
            done += 1
        verb = "paused" if paused else "resumed"
        self.message_user(
            request,
            ngettext(f"%d contract {verb}.", f"%d contracts {verb}.", done) % done,
            messages.SUCCESS,
        )

    @admin.action(description="Pause the selected contracts", permissions=["change"])
    def pause_contracts(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._set_paused(request, queryset, True)

    @admin.action(description="Resume the selected contracts", permissions=["change"])
    def resume_contracts(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._set_paused(request, queryset, False)
