"""Request signature checks of the sources that sign their webhooks (pure).

Both compare in constant time (`hmac.compare_digest`) and never echo the secret.

- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp + body)),
  timestamp from `X-Zendesk-Webhook-Signature-Timestamp`
  (https://developer.zendesk.com/documentation/webhooks/verifying/).
- Intercom: `X-Hub-Signature` = `sha1=` + hex(HMAC-SHA1(client secret, body))
  (https://developers.intercom.com/docs/webhooks/setting-up-webhooks, "Signed notifications").
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def zendesk_valid(secret: str, timestamp: str | None, body: bytes, signature: str | None) -> bool:
    """Whether `signature` is Zendesk's signature of `timestamp` + `body` under `secret`."""
    if not timestamp or not signature:
        return False
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), signature.strip().encode("ascii", "replace"))


def intercom_valid(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` (`sha1=<hex>`) is Intercom's signature of `body` under `secret`."""
    if not signature or not signature.startswith("sha1="):
        return False
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(digest.encode(), signature[5:].strip().lower().encode("ascii", "replace"))
