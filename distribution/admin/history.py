"""Admin for the distribution history: every attempt, read-only, with its explanation."""

from __future__ import annotations

from django.contrib import admin

from distribution.admin.routing import candidate_rows_html
from distribution.models import DistributionAttempt
from distribution.selectors import history


@admin.register(DistributionAttempt)
class DistributionAttemptAdmin(admin.ModelAdmin):
    list_display = ("created_at", "lead", "trigger", "rule_name", "outcome", "duration_ms")
    list_filter = ("trigger", "outcome")
    list_select_related = ("lead",)
    search_fields = ("=lead__id", "rule_name", "reason")
    readonly_fields = (
        "lead",
        "trigger",
        "rule_name",
        "rules_tried",
        "candidates",
        "every_candidate",
        "outcome",
        "reason",
        "duration_ms",
        "actor",
        "created_at",
    )
    show_full_result_count = False

    @admin.display(description="every candidate")
    def every_candidate(self, obj: DistributionAttempt) -> str:
        """Every candidate with its reason, decoded from the compact form."""
        return candidate_rows_html(history.attempt_lines(obj, history.attempt_candidates(obj)))
