"""Admin for agent routing: schedules, pools, rules, offers, automations; the Lead
Assignment and Exception queues, the hopper and simulate (custom views); distribution
history on each lead."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from distribution.admin.adapters import permission_required, run_service
from distribution.errors import DistributionError
from distribution.models import (
    Assignment,
    Automation,
    DistributionAttempt,
    Holiday,
    Notice,
    Offer,
    Organisation,
    PerformanceTier,
    Pool,
    PoolMember,
    Rule,
    Schedule,
    ScheduleInterval,
    Strategy,
)
from distribution.models.routing import INITIAL_ACTIVITIES
from distribution.selectors import history
from distribution.selectors import routing as selectors
from distribution.services import claims, organisation, rules, schedules
from distribution.services.simulate import rule_simulate_edited, rule_simulate_shown
from leads.models import Activity, Lead


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- schedules --------------------------------------------------------------------------------


class ScheduleIntervalInline(admin.TabularInline):
    model = ScheduleInterval
    extra = 1
    fields = ("weekday", "start", "end")


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1
    fields = ("date", "name", "origin")
    readonly_fields = ("origin",)


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "timezone", "holiday_country", "interval_count")
    search_fields = ("name",)
    inlines = [ScheduleIntervalInline, HolidayInline]
    actions = ["fill_holidays"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        return super().get_queryset(request).annotate(n_intervals=Count("intervals"))

    @admin.display(description="intervals", ordering="n_intervals")
    def interval_count(self, obj: Any) -> int:
        return int(obj.n_intervals)

    @admin.action(description="Fill holidays from the schedule's country", permissions=["change"])
    def fill_holidays(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        added = sum(schedules.schedule_fill_holidays(schedule_id=s.pk) for s in queryset)
        self.message_user(request, f"Added {_plural(added, 'holiday')}.", messages.SUCCESS)


# --- pools ------------------------------------------------------------------------------------


class FiltersField(forms.JSONField):
    """A JSON list of filters `{field, op, value}`, each checked as the engine reads it;
    empty means none (`[]`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        # no filters given: an empty box, not the JSON "null"
        return "" if value is None else super().prepare_value(value)

    def clean(self, value: Any) -> list[Any]:
        from distribution.engine.types import Filter

        filters = super().clean(value) or []
        if not isinstance(filters, list):
            raise forms.ValidationError("A list of {field, op, value}.")
        for item in filters:
            if not isinstance(item, dict) or "field" not in item or "op" not in item:
                raise forms.ValidationError("Each filter needs field and op.")
            try:
                Filter(str(item["field"]), str(item["op"]), item.get("value"))
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return filters


class PoolMemberForm(forms.ModelForm):
    filters = FiltersField(
        initial=list,
        help_text='User filters: [{"field": "city", "op": "eq", "value": "Utrecht"}]',
    )

    class Meta:
        model = PoolMember
        fields = (
            "agent",
            "position",
            "weight",
            "active",
            "cap_hour",
            "cap_day",
            "cap_week",
            "cap_month",
            "filters",
        )


class PoolMemberInline(admin.TabularInline):
    model = PoolMember
    form = PoolMemberForm
    extra = 1
    autocomplete_fields = ("agent",)


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ("name", "member_count", "description", "cap_day", "cap_week", "cap_month")
    search_fields = ("name",)
    inlines = [PoolMemberInline]
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        (
            "Caps (the whole pool, beside each member's caps)",
            {
                "fields": (("cap_hour", "cap_day", "cap_week", "cap_month"),),
                "description": "Maximum leads the pool as a whole receives per calendar "
                "hour, day, week and month, in the rule's time zone; blank = no cap.",
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Pool]:
        return super().get_queryset(request).annotate(n_members=Count("members"))

    @admin.display(description="members", ordering="n_members")
    def member_count(self, obj: Any) -> int:
        return int(obj.n_members)


# --- organisation -----------------------------------------------------------------------------


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    """The one organisation row: business hours and after-hours policy that rules without
    their own inherit (seed 003's Organization Details)."""

    fields = ("name", "business_hours", "after_hours", "ring_all_after_hours")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not Organisation.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # one row: the list is its change page (created with the defaults on first visit)
        org = organisation.organisation_get()
        return HttpResponseRedirect(
            reverse("admin:distribution_organisation_change", args=[org.pk])
        )


# --- rules ------------------------------------------------------------------------------------


class PerformanceTierInline(admin.TabularInline):
    model = PerformanceTier
    extra = 0
    fields = ("metric", "op", "threshold", "multiplier", "position")


# The rule form's fields, grouped as the change page shows them (the form's field list too).
RULE_FIELDSETS: Any = (
    (None, {"fields": ("name", "priority", "enabled")}),
    ("Which leads", {"fields": ("sources", "campaign", "filters")}),
    (
        "How",
        {
            "fields": (
                "strategy",
                "pool",
                "claim_timeout",
                "max_rounds",
                "batch_size",
                "default_agent",
                "pull_allotment",
                "sticky_owner",
                "metrics_window",
            )
        },
    ),
    ("When", {"fields": ("schedule", "after_hours", "require_agent_hours", "tcpa")}),
    (
        "Caps (per member)",
        {"fields": (("cap_hour", "cap_day", "cap_week", "cap_month"), "catch_up")},
    ),
    ("On assignment", {"fields": ("initial_status", "initial_activity", "contact_sla")}),
)


class RuleForm(forms.ModelForm):
    """The rule form. The initial activity's choices follow the initial status (seed 003):
    the page lists the chosen status's activities (static/js/rule_initial_activity.js
    re-lists them when the status changes, from the map in the select's
    `data-activities-by-status`), and Rule.clean refuses a pair that does not fit."""

    filters = FiltersField(
        initial=list,
        help_text='Lead filters: [{"field": "company_size", "op": "gte", "value": 50}]',
    )

    class Meta:
        model = Rule
        fields = flatten_fieldsets(RULE_FIELDSETS)

    class Media:
        js = ("js/rule_initial_activity.js",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        activity = self.fields.get("initial_activity")
        if activity is None:
            return
        labels = dict(Activity.Kind.choices)
        by_status = {
            status: [[kind, str(labels[kind])] for kind in kinds]
            for status, kinds in INITIAL_ACTIVITIES.items()
        }
        activity.widget.attrs["data-activities-by-status"] = json.dumps(by_status)
        activity.help_text = "The activity logged on assignment; the list follows the status."
        if not self.is_bound:
            # listed for the status shown; a bound form keeps every kind, so a pair that
            # does not fit gets Rule.clean's message rather than "not a valid choice"
            status = self.initial.get("initial_status") or self.instance.initial_status
            allowed = INITIAL_ACTIVITIES.get(status, ())
            choices = [("", "---------")] + [(k, labels[k]) for k in allowed]
            activity.choices = choices  # type: ignore[attr-defined]  # a ChoiceField


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = (
        "name",
        "priority",
        "enabled",
        "strategy",
        "pool",
        "claim_timeout",
        "schedule",
        "after_hours",
        "waiting",
    )
    list_display_links = ("name",)
    list_filter = ("enabled", "strategy", "after_hours")
    list_select_related = ("pool", "schedule")
    search_fields = ("name",)
    autocomplete_fields = ("pool", "schedule", "default_agent", "campaign")
    filter_horizontal = ("sources",)
    inlines = [PerformanceTierInline]
    actions = ["enable_rules", "disable_rules"]
    change_list_template = "admin/distribution/rule/change_list.html"
    change_form_template = "admin/distribution/rule/change_form.html"  # + Simulate button
    fieldsets = RULE_FIELDSETS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        return selectors.rules_with_counts()

    @admin.display(description="waiting", ordering="waiting")
    def waiting(self, obj: Any) -> int:
        return int(getattr(obj, "waiting", 0))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # a rule is created disabled: simulate first, then enable (seed 002); its initial
        # activity starts as the usual one of the default status (the user may change both)
        initial = super().get_changeform_initial_data(request)
        status = str(
            initial.get("initial_status") or Rule._meta.get_field("initial_status").default
        )
        activities = INITIAL_ACTIVITIES.get(status, ())
        return {
            **({"initial_activity": activities[0]} if activities else {}),
            **initial,
            "enabled": False,
        }

    def save_model(self, request: HttpRequest, obj: Rule, form: Any, change: bool) -> None:
        was_enabled = bool(change and Rule.objects.filter(pk=obj.pk, enabled=True).exists())
        super().save_model(request, obj, form, change)
        # enabling it, or saving the filters of an enabled rule, distributes its backlog
        if rules.rule_saved(rule_id=obj.pk, was_enabled=was_enabled, changed=form.changed_data):
            self.message_user(
                request,
                (
                    "Filters saved: the waiting leads the rule now matches are being "
                    "distributed now."
                    if was_enabled
                    else "Rule enabled: the waiting leads it matches are being distributed now."
                ),
                messages.INFO,
            )

    @admin.action(
        description="Enable (distributes every waiting lead it matches)", permissions=["change"]
    )
    def enable_rules(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        outcomes = rules.rules_enable(
            rule_ids=list(queryset.values_list("pk", flat=True)),
            actor=request.user,  # type: ignore[arg-type]  # admin views are signed in
        )
        enabled = outcomes.pop("enabled", 0)
        moved = sum(outcomes.values())
        detail = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(outcomes.items()))
        self.message_user(
            request,
            f"Enabled {_plural(enabled, 'rule')}; "
            + (
                f"distributed {_plural(moved, 'waiting lead')} ({detail})."
                if moved
                else "the waiting leads they match are queued for distribution."
            ),
            messages.SUCCESS,
        )

    @admin.action(description="Disable", permissions=["change"])
    def disable_rules(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        n = rules.rules_disable(rule_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Disabled {_plural(n, 'rule')}.", messages.SUCCESS)

    # --- custom views ---------------------------------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "queues/assignment/",
                view(self.assignment_queue_view),
                name="distribution_assignment_queue",
            ),
            path(
                "queues/exception/",
                view(self.exception_queue_view),
                name="distribution_exception_queue",
            ),
            path("queues/hopper/", view(self.hopper_view), name="distribution_hopper"),
            path("simulate/", view(self.simulate_view), name="distribution_simulate"),
            path(
                "<int:object_id>/simulate/",
                view(self.simulate_edited_view),
                name="distribution_rule_simulate",
            ),
            *super().get_urls(),
        ]

    def _queue(
        self,
        request: HttpRequest,
        *,
        title: str,
        queryset: QuerySet[Lead],
        url_name: str,
        show_reason: bool = False,
    ) -> HttpResponse:
        """A lead queue: check leads, choose an agent, "Save assignment" (or re-distribute)."""
        if request.method == "POST":
            ids = [int(i) for i in request.POST.getlist("lead") if i.isdigit()]
            if not ids:
                self.message_user(request, "Check the leads first.", messages.WARNING)
            elif "redistribute" in request.POST:
                outcomes = rules.leads_redistribute(lead_ids=ids, actor=request.user)  # type: ignore[arg-type]
                self.message_user(
                    request,
                    "Re-distributed: "
                    + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(outcomes.items()))
                    + ".",
                    messages.SUCCESS,
                )
            else:
                agent = (
                    selectors.assignable_agents().filter(pk=request.POST.get("agent") or 0).first()
                )
                if agent is None:
                    self.message_user(request, "Choose an agent.", messages.WARNING)
                else:
                    run_service(
                        request,
                        lambda: claims.leads_assign_manually(
                            lead_ids=ids,
                            agent=agent,
                            actor=request.user,  # type: ignore[arg-type]  # signed in
                        ),
                        lambda n: (
                            f"Assigned {_plural(n, 'lead')} to {agent.email}; they were e-mailed."
                        ),
                    )
            return HttpResponseRedirect(reverse(f"admin:{url_name}"))
        page = Paginator(queryset, 100).get_page(request.GET.get("page"))
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "page": page,
            "agents": selectors.assignable_agents(),
            "show_reason": show_reason,
            "opts": self.model._meta,
            "queue_url": reverse(f"admin:{url_name}"),
        }
        return TemplateResponse(request, "admin/distribution/queue.html", context)

    @permission_required("leads.view_lead", change=("leads.change_lead",))
    def assignment_queue_view(self, request: HttpRequest) -> HttpResponse:
        return self._queue(
            request,
            title="Lead Assignment queue",
            queryset=selectors.assignment_queue(),
            url_name="distribution_assignment_queue",
            show_reason=True,
        )

    @permission_required("leads.view_lead", change=("leads.change_lead",))
    def exception_queue_view(self, request: HttpRequest) -> HttpResponse:
        return self._queue(
            request,
            title="Lead Exception queue",
            queryset=selectors.exception_queue(),
            url_name="distribution_exception_queue",
            show_reason=True,
        )

    @permission_required("leads.view_lead", change=("leads.change_lead",))
    def hopper_view(self, request: HttpRequest) -> HttpResponse:
        return self._queue(
            request,
            title="Hopper and pull queues",
            queryset=selectors.hopper_queue(),
            url_name="distribution_hopper",
        )

    @permission_required("distribution.view_rule")
    def simulate_view(self, request: HttpRequest) -> HttpResponse:
        """Simulate a rule, optionally changed, over the last N days: nothing is written."""
        form = SimulateForm(request.GET or None)
        result = None
        error = ""
        if form.is_valid():
            data = form.cleaned_data
            changes = {
                k: data[k]
                for k in ("strategy", "claim_timeout", "batch_size", "filters")
                if data.get(k) not in (None, "", [])
            }
            if data.get("pool"):
                changes["pool"] = data["pool"].name
            caps = {p: data.get(f"cap_{p}") for p in ("day", "week")}
            if any(v is not None for v in caps.values()):
                changes["caps"] = caps
            try:
                result = rule_simulate_shown(
                    shown=SIMULATE_SHOWN,
                    rule_name=data["rule"].name if data["rule"] else None,
                    days=data["days"],
                    changes=changes,
                )
            except (DistributionError, ValueError) as exc:
                error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "title": "Simulate distribution",
            "form": form,
            "result": result,
            "error": error,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/distribution/simulate.html", context)

    def simulate_edited_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The rule page's "Simulate" button: the change form as posted (the rule as edited,
        NOT saved) replayed over the last days; nothing is written, the rule stays as it
        is (the page opens beside the form, whose edits are kept)."""
        rule = Rule.objects.filter(pk=object_id).first()
        if rule is None or not self.has_view_permission(request, rule):
            return HttpResponse(status=404 if rule is None else 403)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:distribution_rule_change", args=[rule.pk]))
        form = self.get_form(request, rule, change=True)(request.POST, request.FILES, instance=rule)
        try:
            days = min(max(int(request.POST.get("simulate_days") or 7), 1), 90)
        except ValueError:
            days = 7
        result, error, form_errors = None, "", None
        if form.is_valid():
            edited = form.save(commit=False)  # the instance holds the edits; nothing saved
            sources = [s.slug for s in form.cleaned_data.get("sources") or []]
            try:
                result = rule_simulate_edited(
                    rule=edited, sources=sources, shown=SIMULATE_SHOWN, days=days
                )
            except (DistributionError, ValueError) as exc:
                error = str(exc)
        else:
            form_errors = form.errors
        context = {
            **self.admin_site.each_context(request),
            "title": f"Simulate {rule.name} as edited (not saved)",
            "edited": rule,
            "days": days,
            "result": result,
            "error": error,
            "form_errors": form_errors,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/distribution/simulate.html", context)


SIMULATE_SHOWN = 500  # decisions listed on the page; the totals count every replayed lead


class SimulateForm(forms.Form):
    rule = forms.ModelChoiceField(
        Rule.objects.order_by("priority", "name"),
        required=False,
        help_text="Empty: the whole rule table as it is.",
    )
    days = forms.IntegerField(min_value=1, max_value=90, initial=7)
    strategy = forms.ChoiceField(choices=[("", "(as it is)"), *Strategy.choices], required=False)
    pool = forms.ModelChoiceField(Pool.objects.order_by("name"), required=False)
    claim_timeout = forms.CharField(required=False, help_text='e.g. "15m"')
    batch_size = forms.IntegerField(min_value=1, required=False)
    cap_day = forms.IntegerField(min_value=0, required=False)
    cap_week = forms.IntegerField(min_value=0, required=False)
    filters = FiltersField(help_text='Empty: as they are. [{"field": "city", "op": "eq", ...}]')

    def clean_claim_timeout(self) -> str:
        from distribution.configuration.base import parse_duration

        value = (self.cleaned_data.get("claim_timeout") or "").strip()
        if value and parse_duration(value) is None:
            raise forms.ValidationError(
                'Not a duration: write a number and s, m, h or d, e.g. "15m".'
            )
        return value


# --- offers, assignments, notices, automations ------------------------------------------------


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "lead",
        "agent",
        "rule",
        "round",
        "status",
        "expires_at",
        "closed_at",
    )
    list_filter = ("status", "rule")
    list_select_related = ("lead", "agent", "rule")
    search_fields = ("=lead__id", "agent__email")
    readonly_fields = [f.name for f in Offer._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("created_at", "lead", "agent", "method", "rule", "pool", "sla_missed")
    list_filter = ("method", "sla_missed", "rule")
    list_select_related = ("lead", "agent", "rule", "pool")
    search_fields = ("=lead__id", "agent__email")
    readonly_fields = [f.name for f in Assignment._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "agent", "lead", "message", "read")
    list_filter = ("read",)
    list_select_related = ("agent", "lead")
    search_fields = ("agent__email", "message")
    autocomplete_fields = ("agent", "lead")
    show_full_result_count = False


class AutomationForm(forms.ModelForm):
    filters = FiltersField(initial=list)

    class Meta:
        model = Automation
        fields = (
            "name",
            "enabled",
            "priority",
            "trigger",
            "filters",
            "action",
            "target_user",
            "target_rule",
        )


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    form = AutomationForm
    list_display = (
        "name",
        "enabled",
        "priority",
        "trigger",
        "action",
        "target_user",
        "target_rule",
    )
    list_filter = ("enabled", "trigger", "action")
    list_select_related = ("target_user", "target_rule")
    search_fields = ("name",)
    autocomplete_fields = ("target_user", "target_rule")


# --- distribution history on the lead ---------------------------------------------------------


def candidate_rows_html(rows: list[dict[str, Any]]) -> str:
    """Candidate lines as a table: agents (who, rank, reason and detail) or, explained by
    `history.explain_contracts`, contracts (contract, company, rule, rank, the reason in
    words; the chosen ones ✔ with their price and delivery status)."""
    if history.is_contract_rows(rows):
        return format_html(
            "<table><tr><th>candidate</th><th>company</th><th>rule</th><th>rank</th>"
            "<th>reason</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        c.get("contract") or f"contract #{c.get('contract_id')}",
                        c.get("company") or "",
                        "—" if c.get("rule") is None else c["rule"],
                        c.get("rank") or "—",
                        _contract_verdict(c),
                    )
                    for c in rows
                ),
            ),
        )
    return format_html(
        "<table><tr><th>candidate</th><th>rank</th><th>reason</th></tr>{}</table>",
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            (
                (
                    c.get("agent") or c.get("contract") or "",
                    c.get("rank") or "—",
                    c.get("reason") or ("eligible" if "agent" in c else "chosen"),
                    c.get("detail") or c.get("note") or "",
                )
                for c in rows
            ),
        ),
    )


def _contract_verdict(c: dict[str, Any]) -> str:
    note = f" ({c['note_text']})" if c.get("note_text") else ""
    if c.get("reason") is None:
        price = f" at {c['price']}" if c.get("price") is not None else ""
        delivery = f" · {str(c['delivery']).lower()}" if c.get("delivery") else ""
        return format_html("<strong>✔ chosen</strong>{}{}{}", price, delivery, note)
    text = c.get("reason_text") or str(c.get("reason")).replace("_", " ")
    return format_html("✘ {}{}", text, note)


class DistributionAttemptInline(admin.TabularInline):
    """The lead's distribution history, readable: rules tried, candidates, outcome."""

    model = DistributionAttempt
    extra = 0
    can_delete = False
    verbose_name_plural = "distribution history"
    fields = (
        "created_at",
        "trigger",
        "rule_name",
        "outcome",
        "explanation",
        "rules",
        "candidate_table",
        "duration",
    )
    readonly_fields = fields
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="why")
    def explanation(self, obj: DistributionAttempt) -> str:
        return obj.reason

    @admin.display(description="rules tried")
    def rules(self, obj: DistributionAttempt) -> str:
        lines = history.rule_lines(
            obj.rules_tried or [], [c for c in obj.candidates or [] if isinstance(c, dict)]
        )
        if not lines:
            return "—"
        return format_html_join(
            "",
            "<div>{}<b>{}</b>{}</div>",
            (
                (
                    f"{line['mark']} " if line["mark"] else "",
                    line["rule"],
                    f": {line['text']}" if line["text"].strip() else "",
                )
                for line in lines
            ),
        )

    @admin.display(description="candidates")
    def candidate_table(self, obj: DistributionAttempt) -> str:
        rows = [c for c in obj.candidates or [] if isinstance(c, dict)]
        if not rows:
            return "—"
        head = candidate_rows_html(history.attempt_lines(obj, rows))
        total = history.attempt_candidate_count(obj)
        if total <= len(rows):  # the head holds them all
            return head
        # every candidate is kept: "why not me?" for the 11th (or 500th) agent
        return format_html(
            '{}<details class="every-candidate"><summary>Every candidate ({}): why not me?'
            "</summary>{}</details>",
            head,
            total,
            candidate_rows_html(history.attempt_lines(obj, history.attempt_candidates(obj))),
        )

    @admin.display(description="ms")
    def duration(self, obj: DistributionAttempt) -> str:
        return f"{obj.duration_ms:.1f}"


class OfferInline(admin.TabularInline):
    model = Offer
    extra = 0
    can_delete = False
    fields = ("created_at", "agent", "round", "status", "expires_at", "closed_at")
    readonly_fields = fields
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
