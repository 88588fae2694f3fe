"""Bench-only URL conf (see ingest_settings): the product's URLs plus `/bench/trivial`, the
reference a POST is measured against under the same server."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from config.urls import urlpatterns as product_urls


def trivial(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/trivial", trivial), *product_urls]
