"""The distribution part of the JSON API (agent endpoints)."""

from __future__ import annotations

from .routing import router

__all__ = ["router"]
