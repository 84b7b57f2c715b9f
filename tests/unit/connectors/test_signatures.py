"""Signature checks: Zendesk (timestamp + body, SHA-256, base64) and Intercom (sha1=hex)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from stream_app.connectors.signatures import intercom_valid, zendesk_valid

SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
BODY = b'{"type": "zen:event-type:ticket.created"}'
STAMP = "2026-11-30T09:00:00Z"


def zendesk_signature(secret: str, stamp: str, body: bytes) -> str:
    # Written out from Zendesk's description: base64(HMACSHA256(TIMESTAMP + BODY)).
    return base64.b64encode(
        hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    ).decode()


def test_zendesk_accepts_its_signature_only() -> None:
    good = zendesk_signature(SECRET, STAMP, BODY)
    assert zendesk_valid(SECRET, STAMP, BODY, good)
    assert not zendesk_valid(SECRET, "2026-11-30T09:00:01Z", BODY, good)
    assert not zendesk_valid(SECRET, STAMP, BODY + b" ", good)
    assert not zendesk_valid("other", STAMP, BODY, good)
    assert not zendesk_valid(SECRET, None, BODY, good)
    assert not zendesk_valid(SECRET, STAMP, BODY, None)
    assert not zendesk_valid(SECRET, STAMP, BODY, "é")


def test_intercom_accepts_its_signature_only() -> None:
    good = "sha1=" + hmac.new(b"client-secret", BODY, hashlib.sha1).hexdigest()
    assert intercom_valid("client-secret", BODY, good)
    assert not intercom_valid("client-secret", BODY + b"x", good)
    assert not intercom_valid("client-secret", BODY, good.replace("sha1=", "sha256="))
    assert not intercom_valid("client-secret", BODY, None)
