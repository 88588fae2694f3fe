"""Bearer-token authentication for the API: source tokens, agent tokens, buyer tokens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from accounts.models import AgentProfile, BuyerProfile, User
from accounts.tokens import hash_token


class SourceTokenAuth(HttpBearer):
    """`Authorization: Bearer <source token>` → the active Source."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        from leads.caches import source_for_token_hash

        # cached per process: see leads.caches for what invalidates it and the bound
        return source_for_token_hash(hash_token(token))


class AgentTokenAuth(HttpBearer):
    """`Authorization: Bearer <agent token>` → the agent's User."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        profile = (
            AgentProfile.objects.select_related("user")
            .filter(api_token_hash=hash_token(token), user__is_active=True)
            .first()
        )
        return profile.user if profile else None


class AgentSessionAuth:
    """A signed-in agent's browser session (the agent pages call the API this way)."""

    openapi_type = "apiKey"

    def __call__(self, request: HttpRequest) -> User | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(user, "agent"):
            return user  # type: ignore[return-value]
        return None


class LeadReaderAuth(HttpBearer):
    """A source token or an agent token (reading a lead)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return SourceTokenAuth().authenticate(request, token) or AgentTokenAuth().authenticate(
            request, token
        )


class BuyerTokenAuth(HttpBearer):
    """`Authorization: Bearer <buyer token>` → the buyer's User."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        profile = (
            BuyerProfile.objects.select_related("user", "company")
            .filter(api_token_hash=hash_token(token), user__is_active=True)
            .first()
        )
        return profile.user if profile else None


class BuyerSessionAuth:
    """A signed-in buyer's browser session."""

    openapi_type = "apiKey"

    def __call__(self, request: HttpRequest) -> User | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(user, "buyer"):
            return user  # type: ignore[return-value]
        return None
