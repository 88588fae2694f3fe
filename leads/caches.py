"""Per-process caches the ingestion path reads: sources by token digest, campaigns by slug.

A POST looked both up on every request (24 % of its time). Each cache is cleared in this
process at once by any save or delete of its model (and again when that transaction
commits, so a request that read the old row meanwhile cannot keep it); another process
sees the change within `LEADROUTER_INGEST_CACHE_SECONDS` (default 2 s) — the bound on a
revoked token, a deactivated source or a deleted / re-slugged campaign being accepted
elsewhere. Misses are not cached: a new source or campaign is accepted at once everywhere.
`QuerySet.update()` sends no signal, so only the bound covers it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from leads.models import Campaign, Source

T = TypeVar("T")
MAX_ENTRIES = 4096  # sources and campaigns are few; a flood of unknown keys is never stored
DEFAULT_SECONDS = 2.0


def ttl_seconds() -> float:
    return float(getattr(settings, "LEADROUTER_INGEST_CACHE_SECONDS", DEFAULT_SECONDS))


class LookupCache(Generic[T]):
    """key → object, each entry trusted for `ttl_seconds()`; `clear()` drops every entry."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, T]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], T | None]) -> T | None:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < ttl_seconds():
            return hit[1]
        generation = self._generation
        value = load()
        if value is not None:
            with self._lock:
                # an invalidation while we loaded: the row read may be the old one
                if generation == self._generation:
                    if len(self._entries) >= MAX_ENTRIES:
                        self._entries.clear()
                    self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


sources: LookupCache[Source] = LookupCache()
campaigns: LookupCache[Campaign] = LookupCache()


def source_for_token_hash(digest: str) -> Source | None:
    """The active source whose token has this digest (cached)."""
    return sources.get(
        digest, lambda: Source.objects.filter(token_hash=digest, active=True).first()
    )


def campaign_for_slug(slug: str) -> Campaign | None:
    """The campaign with this slug (cached)."""
    return campaigns.get(slug, lambda: Campaign.objects.filter(slug=slug).first())


def clear_all() -> None:
    sources.clear()
    campaigns.clear()


def _invalidator(cache: LookupCache[Any]) -> Callable[..., None]:
    def invalidate(**_: Any) -> None:
        cache.clear()
        transaction.on_commit(cache.clear)

    return invalidate


_source_changed = _invalidator(sources)
_campaign_changed = _invalidator(campaigns)
for _name, _signal in (("saved", post_save), ("deleted", post_delete)):
    _signal.connect(_source_changed, sender=Source, dispatch_uid=f"leads.caches.source.{_name}")
    _signal.connect(
        _campaign_changed, sender=Campaign, dispatch_uid=f"leads.caches.campaign.{_name}"
    )
