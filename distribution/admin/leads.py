"""The one Lead admin: leads' base admin plus distribution's inlines (offers, attempts), the
owner field and the "Assign to an agent" action through the manual-assignment service, and
the marketplace actions (manual distribution, cherry-pick).

Registered here rather than in leads so that leads imports nothing from distribution and no
admin class is patched at import time (DESIGN: apps do not reach into each other).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import User
from distribution.admin.adapters import run_service
from distribution.admin.delivery import LeadDeliveryAttemptInline
from distribution.admin.marketplace import lead_marketplace_actions
from distribution.admin.notify import WebhookAttemptInline
from distribution.admin.routing import DistributionAttemptInline, OfferInline
from distribution.selectors import routing as selectors
from distribution.services import claims
from leads.admin import LeadAdmin as BaseLeadAdmin
from leads.models import Lead, LeadStatus


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class LeadForm(forms.ModelForm):
    """The lead form; its owner is handed to the assignment service, never written here."""

    class Meta:
        model = Lead
        fields = ("owner",)  # the admin sets the rest from its fieldsets

    def clean_owner(self) -> User | None:
        owner: User | None = self.cleaned_data.get("owner")
        if "owner" not in self.changed_data:
            return owner
        if owner is not None and not selectors.assignable_agents().filter(pk=owner.pk).exists():
            raise forms.ValidationError(f"{owner} is not an active agent; choose an agent.")
        if self.instance.status == LeadStatus.MERGED:
            raise forms.ValidationError("This lead was merged into its original; assign that.")
        return owner


class AssignForm(forms.Form):
    agent = forms.ModelChoiceField(selectors.assignable_agents(), empty_label="— choose an agent —")


@admin.register(Lead)
class LeadAdmin(BaseLeadAdmin):
    form = LeadForm
    inlines = [
        *BaseLeadAdmin.inlines,
        OfferInline,
        DistributionAttemptInline,
        WebhookAttemptInline,
        LeadDeliveryAttemptInline,
    ]
    actions = [*BaseLeadAdmin.actions, "assign_to_agent", *lead_marketplace_actions]

    def save_model(self, request: HttpRequest, obj: Lead, form: Any, change: bool) -> None:
        """Save the form's other fields; a changed owner goes through the assignment service
        (assignment row, turn, offers withdrawn, hold cleared, status, e-mail, history)."""
        if "owner" not in form.changed_data:
            super().save_model(request, obj, form, change)
            return
        new_owner = obj.owner
        obj.owner_id = form.initial.get("owner") if change else None
        form.changed_data.remove("owner")  # the base's lead_changed is for the other fields
        if not change and new_owner is not None:
            # a lead added with its owner is assigned now, not queued for distribution
            obj.distribution_state = "done"
        super().save_model(request, obj, form, change)
        run_service(
            request,
            lambda: claims.leads_assign_manually(
                lead_ids=[obj.pk],
                agent=new_owner,
                actor=request.user,  # type: ignore[arg-type]  # admin views are signed in
                via=claims.Via.LEAD_FORM,
            ),
            f"Lead #{obj.pk} assigned to {new_owner.email}; they were e-mailed."
            if new_owner is not None
            else f"Lead #{obj.pk} taken back: it waits in the Lead Assignment queue.",
        )
        obj.refresh_from_db()

    @admin.action(description="Assign to an agent…", permissions=["change"])
    def assign_to_agent(
        self, request: HttpRequest, queryset: QuerySet[Lead]
    ) -> HttpResponse | None:
        """Choose an agent, then assign the selected leads through the assignment service."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = AssignForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            agent = form.cleaned_data["agent"]
            ids = list(queryset.values_list("pk", flat=True))
            run_service(
                request,
                lambda: claims.leads_assign_manually(
                    lead_ids=ids,
                    agent=agent,
                    actor=request.user,  # type: ignore[arg-type]  # signed in
                    via=claims.Via.BULK,
                ),
                lambda n: (
                    f"Assigned {_plural(n, 'lead')} to {agent.email}; they were e-mailed."
                    + (f" {len(ids) - n} were theirs already." if n < len(ids) else "")
                ),
            )
            return None
        if "apply" in request.POST:
            self.message_user(request, "Choose an agent.", messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Assign {_plural(queryset.count(), 'lead')} to an agent",
            "opts": self.model._meta,
            "form": form,
            "leads": queryset.select_related("owner")[:200],
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action": "assign_to_agent",
        }
        return TemplateResponse(request, "admin/distribution/lead/assign.html", context)

    def has_sell_permission(self, request: HttpRequest) -> bool:
        """The marketplace actions (distribute, cherry-pick) sell: an outbound lead is added."""
        return request.user.has_perm("distribution.add_outboundlead")
