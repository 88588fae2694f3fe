"""Admin for where leads without coordinates are placed: the place cache (correct a wrong
answer, or delete it to have the place looked up again) and the offline postal-code table
(`manage.py load_postcodes`), searchable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from distribution.models import GeoPlace, PostalCode


@admin.register(GeoPlace)
class GeoPlaceAdmin(admin.ModelAdmin):
    list_display = (
        "country",
        "postcode",
        "city",
        "latitude",
        "longitude",
        "source",
        "looked_up_at",
    )
    list_filter = ("source", "country")
    search_fields = ("key", "postcode", "city")
    readonly_fields = ("key", "country", "postcode", "city", "looked_up_at")
    fields = (
        "key",
        "country",
        "postcode",
        "city",
        "latitude",
        "longitude",
        "source",
        "looked_up_at",
    )
    ordering = ("country", "postcode", "city")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # rows are made by looking a place up


@admin.register(PostalCode)
class PostalCodeAdmin(admin.ModelAdmin):
    list_display = ("country", "postal_code", "place_name", "admin_name1", "latitude", "longitude")
    list_filter = ("country",)
    search_fields = ("postal_code", "place_name")
    ordering = ("country", "postal_key")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # loaded from a GeoNames file: manage.py load_postcodes

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
