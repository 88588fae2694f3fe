"""Root URLs: admin, the JSON API, agent pages, buyer pages, login, health."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views as account_views
from config.api import api
from config.health import healthz
from distribution.admin.dashboard import dashboard_view

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("accounts/login/", account_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("agent/", include("distribution.urls")),
    path("buyer/", include("distribution.buyer_urls")),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/login/", account_views.admin_login),  # before the admin's own
    path("admin/", admin.site.urls),
]
if settings.DEMO_FAKE_BUYER:  # the embedded demo's fake buyer endpoint, never elsewhere
    from distribution.demo.fake_buyer import DEMO_PATH, fake_buyer

    urlpatterns.append(path(DEMO_PATH, fake_buyer, name="demo-fake-buyer"))
