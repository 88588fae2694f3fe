"""Admin for users, agents and buyers."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import AgentProfile, BuyerProfile, User
from accounts.services import buyer_issue_token


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    fields = ("phone", "timezone", "active", "available", "schedule", "last_turn_at")
    readonly_fields = ("last_turn_at",)


class BuyerProfileInline(admin.StackedInline):
    model = BuyerProfile
    can_delete = False
    fields = ("company",)
    autocomplete_fields = ("company",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [AgentProfileInline, BuyerProfileInline]
    list_display = ("email", "display_name", "is_staff", "is_active", "is_agent", "is_buyer")
    list_filter = ("is_staff", "is_active", "agent__active", "agent__available")
    list_select_related = ("agent", "buyer")
    search_fields = ("email", "username", "display_name", "first_name", "last_name")
    ordering = ("email",)
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("Leadrouter", {"fields": ("display_name",)}),
    )

    @admin.display(boolean=True, description="Agent")
    def is_agent(self, obj: User) -> bool:
        return hasattr(obj, "agent")

    @admin.display(boolean=True, description="Buyer")
    def is_buyer(self, obj: User) -> bool:
        return hasattr(obj, "buyer")


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "phone", "timezone", "active", "available", "last_turn_at")
    list_filter = ("active", "available", "timezone")
    list_editable = ("active", "available")
    list_select_related = ("user",)
    search_fields = ("user__email", "user__display_name", "phone")
    autocomplete_fields = ("user",)
    readonly_fields = ("last_turn_at", "created_at")
    exclude = ("api_token_hash",)


@admin.register(BuyerProfile)
class BuyerProfileAdmin(admin.ModelAdmin):
    """Buyers' users: which company each belongs to (they see only its leads)."""

    list_display = ("user", "company", "has_token", "created_at")
    list_filter = ("company",)
    list_select_related = ("user", "company")
    search_fields = ("user__email", "user__display_name", "company__name")
    autocomplete_fields = ("user", "company")
    readonly_fields = ("created_at",)
    exclude = ("api_token_hash",)
    actions = ["issue_tokens"]

    @admin.display(boolean=True, description="API token")
    def has_token(self, obj: BuyerProfile) -> bool:
        return bool(obj.api_token_hash)

    @admin.action(description="Issue a new API token (shown once)", permissions=["change"])
    def issue_tokens(self, request: HttpRequest, queryset: QuerySet[BuyerProfile]) -> None:
        for profile in queryset.select_related("user"):
            token = buyer_issue_token(profile_id=profile.pk)
            self.message_user(request, f"{profile.user}: new API token {token} (shown once).")
