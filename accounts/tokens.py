"""API tokens: stored only as SHA-256 hex digests; the plain token is shown once."""

from __future__ import annotations

import hashlib
import secrets


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are high-entropy, so a plain digest suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    """A fresh random token such as `src_…` or `agt_…`."""
    return f"{prefix}_{secrets.token_urlsafe(24)}"
