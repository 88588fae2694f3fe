"""How admin screens call a service (its success or its refusal becomes an admin message),
and how every custom admin view checks the model permission of what it reads and changes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from distribution.errors import DistributionError

View = TypeVar("View", bound=Callable[..., Any])
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def permission_required(*perms: str, change: tuple[str, ...] = ()) -> Callable[[View], View]:
    """A custom admin view (a function or a ModelAdmin method) answers 403 unless the user
    holds every permission in PERMS (to open it at all) and, for a POST, every one in
    CHANGE too (what the POST writes). Permissions are `app_label.codename`:

        @permission_required("leads.view_lead", change=("leads.change_lead",))

    The one place these checks live: a view added without it is caught by the
    authorisation matrix test (tests/accounts/test_authorisation_matrix.py)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = next(a for a in args if isinstance(a, HttpRequest))
            needed = perms if request.method in SAFE_METHODS else (*perms, *change)
            if not request.user.has_perms(needed):
                missing = ", ".join(p for p in needed if not request.user.has_perm(p))
                raise PermissionDenied(f"Your role lacks the permission to do this ({missing}).")
            return view(*args, **kwargs)

        wrapper.required_permissions = (perms, change)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


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
