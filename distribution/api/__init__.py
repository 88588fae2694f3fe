"""The distribution part of the JSON API (agent endpoints, buyer endpoints)."""

from __future__ import annotations

from .buyer import router as buyer_router
from .routing import router

router.add_router("", buyer_router)

__all__ = ["router"]
