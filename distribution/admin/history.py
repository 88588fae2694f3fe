"""Admin for the distribution history: every attempt, read-only, with its explanation."""

from __future__ import annotations

from django.contrib import admin

from distribution.models import DistributionAttempt


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
        "outcome",
        "reason",
        "duration_ms",
        "actor",
        "created_at",
    )
    show_full_result_count = False
