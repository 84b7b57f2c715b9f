"""Optional bearer token for `/api/...` and `/wallboard` (`STREAM_APP_API_TOKEN`).

`/metrics` and `/healthz` stay open for Prometheus and orchestrators. A browser
cannot add headers to an EventSource, so a wall screen opens
`/wallboard?token=…` once: the page answer sets an HttpOnly cookie that its
script, stylesheet and event stream then carry.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

COOKIE = "cx_token"


def presented_token(
    headers: Mapping[str, str], cookies: Mapping[str, str], query: Mapping[str, str]
) -> str | None:
    """The token a request carries: `Authorization: Bearer`, then `?token=`, then the cookie."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("token") or cookies.get(COOKIE) or None


def allowed(expected: str | None, presented: str | None) -> bool:
    if expected is None:
        return True
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())
