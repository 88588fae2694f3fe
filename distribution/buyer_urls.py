"""Buyer pages under /buyer/."""

from __future__ import annotations

from django.urls import path

from distribution import buyer_views as views

app_name = "buyer"
urlpatterns = [
    path("", views.home, name="home"),
    path("leads.csv", views.leads_csv, name="leads_csv"),
    path("leads/<int:outbound_id>/", views.lead_detail, name="lead"),
    path("leads/<int:outbound_id>/return", views.return_lead, name="return_lead"),
    path("contracts/", views.contracts, name="contracts"),
    path("contracts/<int:contract_id>/<str:verb>", views.contract_pause, name="contract_pause"),
]
