"""The Leadrouter-Signature scheme (config/signing.py): what a receiver verifies. Pure, no
database: the same code will sign buyer deliveries."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from config.signing import SignatureError, signature_header, signature_verify

BODY = b'{"event":"offer","lead":{"id":7,"pin":"4821"}}'
T = 1_740_000_000


def test_the_header_is_t_and_the_hmac_of_t_dot_body():
    header = signature_header(secret="s3cret", timestamp=T, body=BODY)
    expected = hmac.new(b"s3cret", f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"


def test_a_receiver_accepts_the_signed_body_within_the_tolerance():
    header = signature_header(secret="s3cret", timestamp=T, body=BODY)
    assert signature_verify(header=header, secret="s3cret", body=BODY, now=T + 299) == T


@pytest.mark.parametrize(
    ("secret", "body", "now", "why"),
    [
        ("other", BODY, T, "does not match"),
        ("s3cret", BODY.replace(b"4821", b"0000"), T, "does not match"),
        ("s3cret", BODY, T + 301, "tolerance"),  # a replay, five minutes on
        ("s3cret", BODY, T - 301, "tolerance"),
    ],
)
def test_a_receiver_rejects_a_wrong_secret_a_changed_body_or_a_stale_time(secret, body, now, why):
    header = signature_header(secret="s3cret", timestamp=T, body=BODY)
    with pytest.raises(SignatureError, match=why):
        signature_verify(header=header, secret=secret, body=body, now=now)


@pytest.mark.parametrize("header", ["", "v1=abc", f"t={T}", "t=soon,v1=abc"])
def test_a_malformed_header_is_rejected(header):
    with pytest.raises(SignatureError):
        signature_verify(header=header, secret="s3cret", body=BODY, now=T)


def test_while_a_secret_rotates_either_signature_passes():
    old = signature_header(secret="old", timestamp=T, body=BODY)
    new = signature_header(secret="new", timestamp=T, body=BODY).split(",")[1]
    both = f"{old},{new}"
    assert signature_verify(header=both, secret="new", body=BODY, now=T) == T
    assert signature_verify(header=both, secret="old", body=BODY, now=T) == T
