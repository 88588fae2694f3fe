"""How a task that distributes retries: on any error, with exponential backoff capped at a
minute (each task names its own `max_retries`)."""

from __future__ import annotations

from typing import Any

RETRY_WITH_BACKOFF: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
}
