"""What one webhook request gets: a pure decision, before any I/O.

`decide(source, headers, body, settings)` → `Decision`:

| request | status | produced |
|---|---|---|
| a secret is set, signature (Amazon Connect: `X-Api-Key`) missing or wrong | 401 | nothing |
| body not JSON | 400 | nothing |
| JSON that can never be mapped (`Unmappable`) | 422 | the body to `cx.deadletter`, reason `unmappable` |
| well-formed, nothing measured (`Ignored`) | 200 | nothing (counted) |
| mapped | 200 once Kafka acknowledged every record, else 503 | the §3 events |

Bodies that are not even JSON are never written anywhere: they may be anyone's
bytes. Size and rate limits are the shell's (`receiver`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream_app.connectors import amazon_connect, intercom, zendesk
from stream_app.connectors.mapped import Ignored, Mapped, Unmappable
from stream_app.connectors.settings import ConnectSettings
from stream_app.connectors.signatures import intercom_valid, zendesk_valid

MAPPERS: dict[str, Callable[[Any, Mapping[str, str]], list[Mapped] | Ignored]] = {
    "zendesk": zendesk.map_webhook,
    "intercom": intercom.map_notification,
    "amazon_connect": amazon_connect.map_record,
}


@dataclass(frozen=True)
class Decision:
    status: int
    outcome: str  # accepted | ignored | unmappable | invalid_json | unauthorized
    detail: str = ""
    records: list[Mapped] = field(default_factory=list)
    deadletter: bool = False


def unmappable_headers(detail: str, origin: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Dead-letter headers of a payload a connector cannot map (SPEC §2): reason
    `unmappable`, the detail, and where it came from (`x-source-*`)."""
    return [("x-error-reason", b"unmappable"), ("x-error-detail", detail.encode("utf-8", "replace")), *origin]


def signed(source: str, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str]) -> bool:
    """Whether the request passes the source's signature check (True when no secret is set)."""
    secret = secrets.get(source)
    if secret is None:
        return True
    if source == "zendesk":
        return zendesk_valid(
            secret,
            headers.get("X-Zendesk-Webhook-Signature-Timestamp"),
            body,
            headers.get("X-Zendesk-Webhook-Signature"),
        )
    if source == "intercom":
        return intercom_valid(secret, body, headers.get("X-Hub-Signature"))
    # Amazon Connect does not sign; an EventBridge API destination sends the API key
    # its connection holds (header `X-Api-Key`).
    return hmac.compare_digest(headers.get("X-Api-Key", "").encode(), secret.encode())


def map_body(source: str, body: bytes, settings: ConnectSettings) -> Decision:
    """Decode and map a body already known to be the source's (signature checked)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Decision(400, "invalid_json", "the body is not JSON")
    try:
        mapped = MAPPERS[source](payload, settings.channels.get(source, {}))
    except Unmappable as exc:
        return Decision(422, "unmappable", str(exc), deadletter=True)
    if isinstance(mapped, Ignored):
        return Decision(200, "ignored", mapped.reason)
    return Decision(200, "accepted", f"{len(mapped)} events", records=mapped)


def decide(source: str, headers: Mapping[str, str], body: bytes, settings: ConnectSettings) -> Decision:
    if not signed(source, headers, body, settings.secrets):
        return Decision(401, "unauthorized", "missing or invalid signature")
    return map_body(source, body, settings)
