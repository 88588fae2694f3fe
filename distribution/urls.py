"""Agent pages under /agent/."""

from __future__ import annotations

from django.urls import path

from distribution import views

app_name = "agent"
urlpatterns = [
    path("", views.home, name="home"),
    path("leads/<int:lead_id>/", views.lead_detail, name="lead"),
    path("leads/<int:lead_id>/activity", views.log_activity, name="log_activity"),
]
