"""Admin for buyers: companies with their locations, contract groups and contracts."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import ngettext

from crm.models import Company, Contract, ContractGroup, DeliveryInterval, Location
from distribution import services
from distribution.admin.adapters import permission_required
from distribution.errors import DistributionError


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
        (
            "Delivery to the buyer",
            {
                "description": "Portal: the buyer sees the lead on their pages (delivered when "
                "sold). Webhook: a signed POST to the URL. E-mail: text + HTML to the address. "
                "Save, then use “Send a test lead” above.",
                "fields": (
                    "delivery_method",
                    "delivery_url",
                    ("delivery_format", "delivery_timeout"),
                    "delivery_headers",
                    "delivery_mapping",
                    "delivery_secret",
                    ("delivery_accept_field", "delivery_accept_in"),
                    "delivery_reason_field",
                    ("delivery_retries", "delivery_retry_after"),
                    "delivery_email",
                ),
            },
        ),
        ("Audit", {"fields": ("last_outbound_at", ("created_at", "updated_at"))}),
    )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.test_delivery_view)
        return [
            path("<int:object_id>/test-delivery/", view, name="crm_contract_test_delivery"),
            *super().get_urls(),
        ]

    @permission_required("crm.view_contract", change=("crm.change_contract",))
    def test_delivery_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """GET: what a test sends; POST: send a made-up lead and show request and answer."""
        contract = get_object_or_404(Contract, pk=object_id)
        sent = None
        if request.method == "POST":
            try:
                sent = services.outbound_test_send(contract_id=contract.pk)
            except DistributionError as exc:
                messages.error(request, exc.detail)
        ctx = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "contract": contract,
            "sent": sent,
            "title": f"Send a test lead · {contract}",
        }
        return TemplateResponse(request, "admin/crm/contract/test_delivery.html", ctx)

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
