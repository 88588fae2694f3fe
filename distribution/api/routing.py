"""Agent API (offers, claims, pull, hopper); the routing issue fills it in."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["agents"])
