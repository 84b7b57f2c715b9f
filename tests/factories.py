"""Builders for input events, shared by unit and integration tests."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from stream_app.core.timeutil import format_ms

_ids = itertools.count(1)


def event(event_type: str, at_ms: int, channel: str = "chat", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": fields.pop("event_id", f"e{next(_ids)}"),
        "event_type": event_type,
        "occurred_at": format_ms(at_ms),
        "channel": channel,
        **fields,
    }


def survey(kind: str, score: int, at_ms: int, channel: str = "chat", **fields: Any) -> dict[str, Any]:
    fields.setdefault("response_id", f"r{next(_ids)}")
    return event("survey.submitted", at_ms, channel, survey=kind, score=score, **fields)


def encode(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)
