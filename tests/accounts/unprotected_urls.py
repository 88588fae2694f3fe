"""The site's URLs plus two views added without their checks (the matrix must find them)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as site


def unchecked(request: HttpRequest) -> HttpResponse:
    return HttpResponse("open")


urlpatterns = [
    path("admin/distribution/new-screen/", admin.site.admin_view(unchecked)),
    path("agent/new-page/", unchecked),
    *site,
]
