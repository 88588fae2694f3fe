"""How admin screens call a service: its success or its refusal becomes an admin message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest

from distribution.errors import DistributionError


def run_service(request: HttpRequest, action: Callable[[], Any], success: str) -> bool:
    """Call a service; report success or its refusal (any DistributionError, by its
    `detail`) as an admin message. Returns whether it succeeded."""
    try:
        action()
    except DistributionError as exc:
        messages.error(request, exc.detail)
        return False
    messages.success(request, success)
    return True
