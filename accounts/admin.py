"""Admin for users and agents."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import AgentProfile, User


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    fields = ("phone", "timezone", "active", "available", "schedule", "last_turn_at")
    readonly_fields = ("last_turn_at",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [AgentProfileInline]
    list_display = ("email", "display_name", "is_staff", "is_active", "is_agent")
    list_filter = ("is_staff", "is_active", "agent__active", "agent__available")
    list_select_related = ("agent",)
    search_fields = ("email", "username", "display_name", "first_name", "last_name")
    ordering = ("email",)
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("Leadrouter", {"fields": ("display_name",)}),
    )

    @admin.display(boolean=True, description="Agent")
    def is_agent(self, obj: User) -> bool:
        return hasattr(obj, "agent")


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
