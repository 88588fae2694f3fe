"""Signing outbound HTTP bodies the way payment providers sign their webhooks (Stripe's
scheme), so a receiver can tell our requests from forged or replayed ones.

    Leadrouter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

The key is a shared secret (NOTIFY_WEBHOOK_SECRET for the telephony webhook; a contract's
secret for buyer deliveries). docs/webhooks.md shows a receiver verifying it. Pure: the
time is an argument, nothing here reads the clock or settings.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Leadrouter-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300  # seconds a receiver should accept between `t` and its own clock


class SignatureError(ValueError):
    """A signature header that is missing, malformed, stale or does not match."""


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` under SECRET."""
    signed = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, timestamp: int, body: bytes) -> str:
    """The value of the Leadrouter-Signature header for BODY sent at TIMESTAMP."""
    return f"t={int(timestamp)},{SCHEME}={signature(secret=secret, timestamp=timestamp, body=body)}"


def signature_verify(
    *, header: str, secret: str, body: bytes, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> int:
    """Check a Leadrouter-Signature header as a receiver does; returns its timestamp or raises
    SignatureError. Several `v1=` values (a secret being rotated) pass if any one matches."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as exc:
                raise SignatureError("timestamp is not an integer") from exc
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"expected t=<unix>,{SCHEME}=<hex>")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance window")
    expected = signature(secret=secret, timestamp=timestamp, body=body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match")
    return timestamp
