"""Sign in with an e-mail address or a username."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.models import User


class EmailOrUsernameBackend(ModelBackend):
    """Like ModelBackend, but the login field may hold the user's e-mail address."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username and "@" in username:
            user = User.objects.filter(email__iexact=username.strip()).first()
            if user is not None:
                username = user.get_username()
        result = super().authenticate(request, username=username, password=password, **kwargs)
        return result if isinstance(result, User) else None
