"""Agent pages under /agent/."""

from __future__ import annotations

from django.urls import path

from distribution import views

app_name = "agent"
urlpatterns = [
    path("", views.home, name="home"),
    path("live/offers", views.offers_live, name="offers_live"),
    path("availability", views.set_availability, name="availability"),
    path("leads/<int:lead_id>/", views.lead_detail, name="lead"),
    path("leads/<int:lead_id>/activity", views.log_activity, name="log_activity"),
    path("leads/<int:lead_id>/status", views.set_status, name="set_status"),
    path("offers/<int:offer_id>/claim", views.claim_offer, name="claim_offer"),
    path("offers/<int:offer_id>/decline", views.decline_offer, name="decline_offer"),
    path("claim", views.claim_pin, name="claim_pin"),
    path("pull", views.pull, name="pull"),
    path("hopper/", views.hopper, name="hopper"),
    path("hopper/<int:lead_id>/claim", views.hopper_claim, name="hopper_claim"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/read", views.inbox_read, name="inbox_read"),
    path("inbox/live", views.inbox_live, name="inbox_live"),
]
