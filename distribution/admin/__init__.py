"""Admin for distribution: one module per concern (history, routing, marketplace)."""

from __future__ import annotations

import importlib

for _module in ("history", "routing", "marketplace"):
    try:
        importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as exc:  # a part of the product not built yet
        if exc.name != f"{__name__}.{_module}":
            raise
