"""What a source payload maps to: §3 events with their topic and key, or a reason.

Shapes shared by every connector's mapping (pure, no I/O):

- `Mapped(topic, key, event)`: one §3 event for `topic` (`cx.tickets`, `cx.chats`,
  `cx.surveys`), keyed by its entity id (SPEC §2), with a stable `event_id`
  derived from the source's own ids so that a re-delivered payload maps to the
  same ids and the worker counts it as a duplicate.
- `Ignored(reason)`: a well-formed payload that carries nothing §3 measures
  (an internal note, a self-service call that never queued): answered 2xx and
  counted, nothing produced.
- `Unmappable(detail)`: raised for a payload that can never be mapped (unknown
  event type, missing ids or times): answered 4xx and dead-lettered with reason
  `unmappable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream_app.core.timeutil import parse_rfc3339_ms

TICKETS, CHATS, SURVEYS = "cx.tickets", "cx.chats", "cx.surveys"

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Mapped:
    topic: str
    key: str
    event: dict[str, Any]


@dataclass(frozen=True)
class Ignored:
    reason: str


class Unmappable(ValueError):
    """The payload can never become a §3 event; the message says why."""


def field(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]…`, or None where any step is missing or not an object."""
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def ident(value: Any, what: str) -> str:
    """A source id (string or integer) as a non-empty string of at most 200 characters."""
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise Unmappable(f"{what} is missing")
    text = str(value)
    if len(text) > 200:
        raise Unmappable(f"{what} is longer than 200 characters")
    return text


def optional_ident(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) in ("", "0"):
        return None
    return str(value)[:200]


def rfc3339(value: Any, what: str) -> str:
    """An RFC 3339 timestamp with an offset (as §3 wants) from an RFC 3339 string or
    Unix seconds/milliseconds (Intercom sends seconds)."""
    if isinstance(value, str) and _RFC3339.match(value):
        try:
            parse_rfc3339_ms(value)  # the pattern lets 2026-02-30T25:61:00Z through
        except ValueError:
            raise Unmappable(f"{what} {value[:40]!r} is not a real time") from None
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        seconds = value / 1000 if value > 10**11 else value
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise Unmappable(f"{what} {value!r} is not a time") from None
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Unmappable(f"{what} {value[:40]!r} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise Unmappable(f"{what} {value[:40]!r} has no UTC offset")
        return moment.isoformat()
    raise Unmappable(f"{what} is missing")


def last_segment(arn: Any) -> str | None:
    """The id at the end of an ARN or path (`…/queue/abc` → `abc`)."""
    if not isinstance(arn, str) or not arn:
        return None
    return arn.rsplit("/", 1)[-1][:200] or None
