"""Admin for the marketplace: workflows and their selection rules, windows, outbound leads,
and the managers' screens — manual distribution of a lead (with the engine's explanation and
the lead's distribution history), the cherry-pick hopper, returns and a turnover report.

Every screen reads through `distribution.selectors.marketplace` and writes through one
service call; a refused operation shows the service's message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, re_path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext

from crm.models import Contract
from distribution import services
from distribution.admin.adapters import permission_required, run_service
from distribution.admin.delivery import DeliveryAttemptInline
from distribution.configuration.base import format_duration, parse_duration
from distribution.errors import MarketplaceError
from distribution.models import (
    DistributionWindow,
    OutboundLead,
    ReturnStatus,
    SelectionRule,
    WindowStatus,
    Workflow,
)
from distribution.selectors import marketplace as sel
from leads.models import Campaign, Lead


def distribute_url(lead_id: int) -> str:
    """The manual-distribution page of a lead."""
    return reverse("admin:distribution_outboundlead_distribute", args=[lead_id])


def cherry_pick_url(lead_id: int) -> str:
    """The cherry-pick form of a lead."""
    return reverse("admin:distribution_outboundlead_cherry_pick", args=[lead_id])


# --------------------------------------------------------------------------- workflows


class SelectionRuleInline(admin.TabularInline):
    model = SelectionRule
    extra = 1
    fields = ("position", "mode", "take", "min_turnover")
    ordering = ("position",)
    verbose_name_plural = "contract selection rules (applied in position order)"


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = (
        "campaign",
        "mode",
        "window",
        "max_multiplication",
        "min_contracts",
        "min_turnover",
        "batch_optimal",
        "rules",
    )
    list_filter = ("mode", "batch_optimal")
    list_select_related = ("campaign",)
    search_fields = ("campaign__slug", "campaign__name")
    autocomplete_fields = ("campaign",)
    inlines = [SelectionRuleInline]
    fieldsets = (
        (None, {"fields": ("campaign", "mode", ("window_duration", "recheck_every"))}),
        (
            "Limits and total selection minimums",
            {"fields": ("max_multiplication", ("min_contracts", "min_turnover"), "batch_optimal")},
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workflow]:
        return super().get_queryset(request).prefetch_related("selection_rules")

    @admin.display(description="window")
    def window(self, obj: Workflow) -> str:
        if obj.mode != "window":
            return "—"
        return f"{format_duration(obj.window_length)} / every {format_duration(obj.window_every)}"

    @admin.display(description="selection rules")
    def rules(self, obj: Workflow) -> str:
        return (
            " → ".join(
                f"{r.get_mode_display().split(' (')[0]} × {r.take}"
                for r in obj.selection_rules.all()
            )
            or "none"
        )


def _call_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    ids: Iterable[int],
    call: Callable[[int], Any],
    *,
    noun: str,
    verb: str,
) -> int:
    """An admin action over the selection: CALL for every id, then "N <noun>s <verb>.";
    returns how many the service refused (a MarketplaceError)."""
    done = refused = 0
    for pk in ids:
        try:
            call(pk)
            done += 1
        except MarketplaceError:
            refused += 1
    modeladmin.message_user(
        request,
        ngettext(f"%d {noun} {verb}.", f"%d {noun}s {verb}.", done) % done,
        messages.SUCCESS,
    )
    return refused


# --------------------------------------------------------------------------- windows


class WindowEditForm(forms.Form):
    ends_at = forms.DateTimeField(label="Ends at", help_text="In the server's time zone.")
    every = forms.CharField(label="Recheck every", help_text='A duration like "15m", "1h".')

    def clean_every(self) -> dt.timedelta:
        value = parse_duration(self.cleaned_data["every"])
        if value is None or value.total_seconds() <= 0:
            raise forms.ValidationError('Give a positive duration like "15m" or "1h".')
        return value


class WindowAddForm(forms.Form):
    duration = forms.CharField(
        required=False, label="Duration", help_text='Empty: the workflow\'s (e.g. "1d").'
    )
    every = forms.CharField(
        required=False, label="Recheck every", help_text='Empty: the workflow\'s (e.g. "15m").'
    )

    def _duration(self, name: str) -> dt.timedelta | None:
        text = self.cleaned_data.get(name) or ""
        if not text:
            return None
        value = parse_duration(text)
        if value is None or value.total_seconds() <= 0:
            raise forms.ValidationError('Give a positive duration like "15m" or "1d".')
        return value

    def clean_duration(self) -> dt.timedelta | None:
        return self._duration("duration")

    def clean_every(self) -> dt.timedelta | None:
        return self._duration("every")


class WindowDueFilter(admin.SimpleListFilter):
    """Active windows whose recheck is overdue (Beat not running?)."""

    title = "recheck"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "overdue by more than 5 minutes")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[DistributionWindow]
    ) -> QuerySet[DistributionWindow]:
        if self.value() == "overdue":
            return queryset.filter(
                status=WindowStatus.ACTIVE,
                next_check_at__lt=timezone.now() - dt.timedelta(minutes=5),
            )
        return queryset


@admin.register(DistributionWindow)
class DistributionWindowAdmin(admin.ModelAdmin):
    list_display = (
        "lead",
        "status",
        "started_at",
        "ends_at",
        "every_text",
        "next_check_at",
        "checks",
        "sold",
        "window_links",
    )
    list_filter = ("status", WindowDueFilter)
    list_select_related = ("lead",)
    search_fields = ("=lead__id", "lead__email")
    readonly_fields = (
        "lead",
        "status",
        "started_at",
        "ends_at",
        "every",
        "next_check_at",
        "last_checked_at",
        "checks",
        "closed_at",
        "close_reason",
        "created_by",
    )
    actions = ["pause_windows", "resume_windows", "stop_windows"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # windows are added to a lead from its manual-distribution page

    def get_queryset(self, request: HttpRequest) -> QuerySet[DistributionWindow]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(n_sold=Count("outbound"))

    @admin.display(description="every")
    def every_text(self, obj: DistributionWindow) -> str:
        return format_duration(obj.every) or "—"

    @admin.display(description="sold", ordering="n_sold")
    def sold(self, obj: Any) -> int:
        return int(obj.n_sold)

    @admin.display(description="")
    def window_links(self, obj: DistributionWindow) -> str:
        edit = reverse("admin:distribution_distributionwindow_edit", args=[obj.pk])
        return format_html(
            '<a href="{}">edit</a> · <a href="{}">lead</a>', edit, distribute_url(obj.lead_id)
        )

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:window_id>/edit/",
                wrap(self.edit_view),
                name="distribution_distributionwindow_edit",
            ),
            re_path(  # only these verbs: the admin's own change/history/delete pages stay
                r"^(?P<window_id>\d+)/(?P<verb>pause|resume|stop)/$",
                wrap(self.verb_view),
                name="distribution_distributionwindow_verb",
            ),
            path(
                "add-to-lead/<int:lead_id>/",
                wrap(self.add_view_for_lead),
                name="distribution_distributionwindow_add_to_lead",
            ),
            *super().get_urls(),
        ]

    @permission_required("distribution.change_distributionwindow")
    def edit_view(self, request: HttpRequest, window_id: int) -> HttpResponse:
        """Change an open window's end and interval (`window_edit`)."""
        window = get_object_or_404(DistributionWindow.objects.select_related("lead"), pk=window_id)
        initial = {
            "ends_at": timezone.localtime(window.ends_at),
            "every": format_duration(window.every),
        }
        form = WindowEditForm(request.POST or None, initial=initial)
        if (
            request.method == "POST"
            and form.is_valid()
            and run_service(
                request,
                lambda: services.window_edit(
                    window_id=window.pk,
                    actor=request.user,
                    ends_at=form.cleaned_data["ends_at"],
                    every=form.cleaned_data["every"],
                ),
                "Window updated.",
            )
        ):
            return HttpResponseRedirect(distribute_url(window.lead_id))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Edit {window}",
            "window": window,
            "form": form,
            "opts": self.model._meta,
            "lead_url": distribute_url(window.lead_id),
        }
        return TemplateResponse(request, "admin/distribution/distributionwindow/edit.html", context)

    @permission_required("distribution.change_distributionwindow")
    def verb_view(self, request: HttpRequest, window_id: int | str, verb: str) -> HttpResponse:
        """POST pause / resume / stop of one window, back to the lead's page."""
        window = get_object_or_404(DistributionWindow, pk=window_id)
        actions = {
            "pause": (services.window_pause, "Window paused."),
            "resume": (services.window_resume, "Window resumed."),
            "stop": (services.window_stop, "Window stopped."),
        }
        if request.method == "POST" and verb in actions:
            service, text = actions[verb]
            run_service(request, lambda: service(window_id=window.pk, actor=request.user), text)
        return HttpResponseRedirect(request.POST.get("next") or distribute_url(window.lead_id))

    @permission_required("leads.view_lead", "distribution.add_distributionwindow")
    def add_view_for_lead(self, request: HttpRequest, lead_id: int) -> HttpResponse:
        """Give a lead outside a window a new auto-distribution window (`window_open`)."""
        lead = get_object_or_404(Lead.objects.select_related("campaign"), pk=lead_id)
        form = WindowAddForm(request.POST or None)
        if (
            request.method == "POST"
            and form.is_valid()
            and run_service(
                request,
                lambda: services.window_open(
                    lead_id=lead.pk,
                    actor=request.user,
                    duration=form.cleaned_data["duration"],
                    every=form.cleaned_data["every"],
                ),
                "Window added; the lead was checked at once.",
            )
        ):
            return HttpResponseRedirect(distribute_url(lead.pk))
        workflow = sel.workflow_for_campaign(campaign_id=lead.campaign_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Add an auto-distribution window to {lead}",
            "lead": lead,
            "workflow": workflow,
            "form": form,
            "opts": self.model._meta,
            "lead_url": distribute_url(lead.pk),
        }
        return TemplateResponse(request, "admin/distribution/distributionwindow/add.html", context)

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[DistributionWindow],
        service: Callable[..., Any],
        verb: str,
    ) -> None:
        failed = _call_each(
            self,
            request,
            queryset.values_list("id", flat=True),
            lambda window_id: service(window_id=window_id, actor=request.user),
            noun="window",
            verb=verb,
        )
        if failed:
            self.message_user(
                request,
                ngettext(
                    f"%d window could not be {verb}.", f"%d windows could not be {verb}.", failed
                )
                % failed,
                messages.WARNING,
            )

    @admin.action(description="Pause the selected windows", permissions=["change"])
    def pause_windows(self, request: HttpRequest, queryset: QuerySet[DistributionWindow]) -> None:
        self._each(request, queryset, services.window_pause, "paused")

    @admin.action(description="Resume the selected windows", permissions=["change"])
    def resume_windows(self, request: HttpRequest, queryset: QuerySet[DistributionWindow]) -> None:
        self._each(request, queryset, services.window_resume, "resumed")

    @admin.action(description="Stop the selected windows", permissions=["change"])
    def stop_windows(self, request: HttpRequest, queryset: QuerySet[DistributionWindow]) -> None:
        self._each(request, queryset, services.window_stop, "stopped")


# --------------------------------------------------------------------------- outbound leads


class ReturnRequestForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class ContractChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.company} — {obj.name} ({obj.price})"


class CherryPickForm(forms.Form):
    contract = ContractChoiceField(queryset=Contract.objects.none())
    price = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        decimal_places=2,
        max_digits=10,
        help_text="Empty: the contract's price.",
    )

    def __init__(self, *args: Any, campaign_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        qs = (
            Contract.objects.select_related("company")
            .filter(active=True)
            .order_by("company__name", "name")
        )
        if campaign_id is not None:
            qs = qs.filter(campaign_id=campaign_id)
        field = self.fields["contract"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = qs


@admin.register(OutboundLead)
class OutboundLeadAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "lead",
        "contract",
        "company",
        "method",
        "price",
        "actor",
        "return_status",
        "status",
    )
    list_filter = ("method", "status", "return_status", "contract__campaign")
    list_select_related = ("lead", "contract__company", "actor")
    search_fields = ("=lead__id", "contract__name", "contract__company__name")
    readonly_fields = (
        "lead",
        "contract",
        "method",
        "price",
        "created_at",
        "actor",
        "window",
        "return_status",
        "return_reason",
        "returned_at",
        "return_decided_at",
        "return_decided_by",
        "return_note",
        "status",
        "delivery_reason",
        "delivery_attempts",
        "delivery_due_at",
    )
    inlines = [DeliveryAttemptInline]
    date_hierarchy = "created_at"
    actions = ["approve_returns", "deny_returns"]
    show_full_result_count = False
    change_list_template = "admin/distribution/outboundlead/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created by distribution, manual distribution or cherry-picking

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # sold leads are history; a return credits the buyer instead

    @admin.display(description="company", ordering="contract__company__name")
    def company(self, obj: OutboundLead) -> str:
        return obj.contract.company.name

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "distribute/<int:lead_id>/",
                wrap(self.distribute_view),
                name="distribution_outboundlead_distribute",
            ),
            path("hopper/", wrap(self.hopper_view), name="distribution_outboundlead_hopper"),
            path(
                "cherry-pick/<int:lead_id>/",
                wrap(self.cherry_pick_view),
                name="distribution_outboundlead_cherry_pick",
            ),
            path(
                "<int:outbound_id>/return/",
                wrap(self.return_view),
                name="distribution_outboundlead_return",
            ),
            path("turnover/", wrap(self.turnover_view), name="distribution_outboundlead_turnover"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            **extra,
        }

    @permission_required(
        "leads.view_lead",
        "distribution.view_outboundlead",
        change=("distribution.add_outboundlead",),
    )
    def distribute_view(self, request: HttpRequest, lead_id: int) -> HttpResponse:
        """Manual distribution: pick contracts, with every contract's eligibility and the
        lead's distribution history (attempts by users and by the system)."""
        lead = get_object_or_404(Lead.objects.select_related("campaign", "source"), pk=lead_id)
        if request.method == "POST":
            ids = [int(i) for i in request.POST.getlist("contracts") if i.isdigit()]
            try:
                attempt = services.lead_distribute_manually(
                    lead_id=lead.pk, contract_ids=ids, actor=request.user
                )
            except MarketplaceError as exc:
                messages.error(request, exc.detail)
            else:
                level = messages.SUCCESS if attempt.outcome == "distributed" else messages.ERROR
                messages.add_message(request, level, attempt.reason)
            return HttpResponseRedirect(distribute_url(lead.pk))
        search = request.GET.get("q", "").strip()
        preview = sel.marketplace_preview(lead=lead, search=search)
        return TemplateResponse(
            request,
            "admin/distribution/outboundlead/distribute.html",
            self._context(
                request,
                f"Distribute lead {lead}",
                lead=lead,
                preview=preview,
                search=search,
                cherry_url=cherry_pick_url(lead.pk),
                window_add_url=reverse(
                    "admin:distribution_distributionwindow_add_to_lead", args=[lead.pk]
                ),
            ),
        )

    @permission_required("leads.view_lead", "distribution.view_outboundlead")
    def hopper_view(self, request: HttpRequest) -> HttpResponse:
        """The cherry-pick hopper: recent inbound leads a manager may hand to a contract."""
        search = request.GET.get("q", "").strip()
        campaign_id = request.GET.get("campaign")
        campaign = (
            Campaign.objects.filter(pk=int(campaign_id)).first()
            if campaign_id and campaign_id.isdigit()
            else None
        )
        unsold = request.GET.get("unsold") == "1"
        leads = sel.hopper_leads(
            search=search, campaign_id=campaign.pk if campaign else None, unsold=unsold
        )
        return TemplateResponse(
            request,
            "admin/distribution/outboundlead/hopper.html",
            self._context(
                request,
                "Cherry-pick hopper",
                leads=leads,
                search=search,
                campaign=campaign,
                unsold=unsold,
                campaigns=Campaign.objects.order_by("name"),
            ),
        )

    @permission_required("leads.view_lead", "distribution.add_outboundlead")
    def cherry_pick_view(self, request: HttpRequest, lead_id: int) -> HttpResponse:
        """Hand one lead to a chosen contract (method cherry_pick)."""
        lead = get_object_or_404(Lead.objects.select_related("campaign"), pk=lead_id)
        every = request.GET.get("all") == "1" or request.POST.get("all") == "1"
        form = CherryPickForm(request.POST or None, campaign_id=None if every else lead.campaign_id)
        if request.method == "POST" and form.is_valid():
            contract = form.cleaned_data["contract"]
            if run_service(
                request,
                lambda: services.lead_cherry_pick(
                    lead_id=lead.pk,
                    contract_id=contract.pk,
                    actor=request.user,
                    price=form.cleaned_data["price"],
                ),
                f"Lead {lead} cherry-picked for {contract}.",
            ):
                return HttpResponseRedirect(reverse("admin:distribution_outboundlead_hopper"))
        return TemplateResponse(
            request,
            "admin/distribution/outboundlead/cherry_pick.html",
            self._context(
                request,
                f"Cherry-pick lead {lead}",
                lead=lead,
                form=form,
                all_contracts=every,
                outbound=list(sel.outbound_list_for_lead(lead_id=lead.pk)),
            ),
        )

    @permission_required("distribution.change_outboundlead")
    def return_view(self, request: HttpRequest, outbound_id: int) -> HttpResponse:
        """Record a buyer's return of an outbound lead, with its reason."""
        outbound = get_object_or_404(
            OutboundLead.objects.select_related("contract", "lead"), pk=outbound_id
        )
        form = ReturnRequestForm(request.POST or None)
        if (
            request.method == "POST"
            and form.is_valid()
            and run_service(
                request,
                lambda: services.outbound_return_request(
                    outbound_id=outbound.pk, reason=form.cleaned_data["reason"], actor=request.user
                ),
                "Return recorded; approve or deny it from the outbound leads list.",
            )
        ):
            return HttpResponseRedirect(distribute_url(outbound.lead_id))
        return TemplateResponse(
            request,
            "admin/distribution/outboundlead/return.html",
            self._context(request, f"Return {outbound}", outbound=outbound, form=form),
        )

    @permission_required("distribution.view_outboundlead")
    def turnover_view(self, request: HttpRequest) -> HttpResponse:
        """Turnover per contract: sold, returned (approved), net; cherry-picks apart."""
        try:
            days = max(1, min(int(request.GET.get("days", 30)), 3650))
        except ValueError:
            days = 30
        rows = sel.turnover_by_contract(since=timezone.now() - dt.timedelta(days=days))
        totals = {
            key: sum((r[key] for r in rows), Decimal(0))
            for key in ("sold", "returned", "net", "cherry")
        }
        return TemplateResponse(
            request,
            "admin/distribution/outboundlead/turnover.html",
            self._context(request, "Turnover by contract", rows=rows, totals=totals, days=days),
        )

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[OutboundLead],
        service: Callable[..., Any],
        verb: str,
    ) -> None:
        # counted first: the decisions below move the requested ones out of `requested`
        not_waiting = queryset.exclude(return_status=ReturnStatus.REQUESTED).count()
        skipped = not_waiting + _call_each(
            self,
            request,
            queryset.filter(return_status=ReturnStatus.REQUESTED).values_list("id", flat=True),
            lambda outbound_id: service(outbound_id=outbound_id, actor=request.user),
            noun="return",
            verb=verb,
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d outbound lead had no return waiting.",
                    "%d outbound leads had no return waiting.",
                    skipped,
                )
                % skipped,
                messages.WARNING,
            )

    @admin.action(
        description="Approve the selected returns (credits caps and budgets)",
        permissions=["change"],
    )
    def approve_returns(self, request: HttpRequest, queryset: QuerySet[OutboundLead]) -> None:
        self._decide(request, queryset, services.outbound_return_approve, "approved")

    @admin.action(description="Deny the selected returns", permissions=["change"])
    def deny_returns(self, request: HttpRequest, queryset: QuerySet[OutboundLead]) -> None:
        self._decide(request, queryset, services.outbound_return_deny, "denied")


# --------------------------------------------------------------------------- lead actions


def _open_for_one_lead(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Lead],
    what: str,
    url: Callable[[int], str],
) -> HttpResponse | None:
    """Redirect to URL of the one selected lead; a warning unless exactly one is selected."""
    ids = list(queryset.values_list("id", flat=True)[:2])
    if len(ids) != 1:
        modeladmin.message_user(request, f"Select exactly one lead to {what}.", messages.WARNING)
        return None
    return HttpResponseRedirect(url(ids[0]))


@admin.action(description="Distribute to contracts (marketplace)…", permissions=["sell"])
def lead_distribute_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Lead]
) -> HttpResponse | None:
    """Open the manual-distribution page of the one selected lead."""
    return _open_for_one_lead(modeladmin, request, queryset, "distribute", distribute_url)


@admin.action(description="Cherry-pick for a contract…", permissions=["sell"])
def lead_cherry_pick_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Lead]
) -> HttpResponse | None:
    """Open the cherry-pick form of the one selected lead."""
    return _open_for_one_lead(modeladmin, request, queryset, "cherry-pick", cherry_pick_url)


lead_marketplace_actions = [lead_distribute_action, lead_cherry_pick_action]
