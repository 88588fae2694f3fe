"""The one Lead admin: leads' base admin plus distribution's inlines (offers, attempts) and
the marketplace actions (manual distribution, cherry-pick).

Registered here rather than in leads so that leads imports nothing from distribution and no
admin class is patched at import time (DESIGN: apps do not reach into each other).
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from distribution.admin.marketplace import lead_marketplace_actions
from distribution.admin.routing import DistributionAttemptInline, OfferInline
from leads.admin import LeadAdmin as BaseLeadAdmin
from leads.models import Lead


@admin.register(Lead)
class LeadAdmin(BaseLeadAdmin):
    inlines = [*BaseLeadAdmin.inlines, OfferInline, DistributionAttemptInline]
    actions = [*lead_marketplace_actions]  # leads' base has none of its own

    def has_sell_permission(self, request: HttpRequest) -> bool:
        """The marketplace actions (distribute, cherry-pick) sell: an outbound lead is added."""
        return request.user.has_perm("distribution.add_outboundlead")
