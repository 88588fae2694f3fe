"""Celery tasks (thin: ids in, one service call). Autodiscovery imports this package."""

from __future__ import annotations

import importlib

from .queueing import distribute_lead, requeue_pending

for _module in ("routing", "marketplace"):
    try:
        importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as exc:  # a part of the product not built yet
        if exc.name != f"{__name__}.{_module}":
            raise

__all__ = ["distribute_lead", "requeue_pending"]
