"""Admin for distribution: one module per concern (history, routing, marketplace) and the
one Lead admin (leads), which adds distribution's inlines and actions to leads' base."""

from __future__ import annotations

from . import delivery, geo, history, leads, marketplace, notify, routing

__all__ = ["delivery", "geo", "history", "leads", "marketplace", "notify", "routing"]
