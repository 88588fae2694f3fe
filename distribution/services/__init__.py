"""The only writers of distribution state (see CONVENTIONS: services write, selectors read)."""

from __future__ import annotations

from .queueing import lead_queue_distribution, leads_distribute_pending, leads_requeue_stale
from .routing import lead_distribute

__all__ = [
    "lead_distribute",
    "lead_queue_distribution",
    "leads_distribute_pending",
    "leads_requeue_stale",
]
