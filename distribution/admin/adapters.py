"""How admin screens call a service: its success or its refusal becomes an admin message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest

from distribution.errors import DistributionError


def run_service(
    request: HttpRequest, action: Callable[[], Any], success: str | Callable[[Any], str]
) -> bool:
    """Call a service; report success (a text, or one made from what the service returned)
    or its refusal (any DistributionError, by its `detail`) as an admin message. Returns
    whether it succeeded."""
    try:
        result = action()
    except DistributionError as exc:
        messages.error(request, exc.detail)
        return False
    messages.success(request, success if isinstance(success, str) else success(result))
    return True
