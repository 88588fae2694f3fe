"""Project configuration; exposes the Celery app so that `celery -A config` finds it."""

from __future__ import annotations

from .celery import app as celery_app

__all__ = ("celery_app",)
