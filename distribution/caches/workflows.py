"""Per-process cache of the campaigns sold by the marketplace (those with a `Workflow`), for
the arrival path's choice between selling and routing without a query.

Cleared in this process at once by any save or delete of a Workflow (and again when that
transaction commits); another process sees the change within
`LEADROUTER_INGEST_CACHE_SECONDS` (default 2 s), as leads.caches.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from distribution.models import Workflow
from leads.caches import ttl_seconds

_lock = threading.Lock()
_state: dict[str, Any] = {"at": None, "ids": frozenset(), "generation": 0}


def workflow_campaign_ids() -> frozenset[int]:
    """The ids of the campaigns with a marketplace workflow (cached)."""
    at = _state["at"]
    if at is not None and time.monotonic() - at < ttl_seconds():
        return _state["ids"]  # type: ignore[no-any-return]
    generation, now = _state["generation"], time.monotonic()
    ids = frozenset(Workflow.objects.values_list("campaign_id", flat=True))
    with _lock:
        if generation == _state["generation"]:  # no invalidation while we loaded
            _state.update(at=now, ids=ids)
    return ids


def clear() -> None:
    with _lock:
        _state["generation"] += 1
        _state["at"] = None


def _changed(**_: Any) -> None:
    clear()
    transaction.on_commit(clear)


post_save.connect(_changed, sender=Workflow, dispatch_uid="distribution.caches.workflows.saved")
post_delete.connect(_changed, sender=Workflow, dispatch_uid="distribution.caches.workflows.deleted")
