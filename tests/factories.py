"""Builders for input events, shared by unit and integration tests."""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson

from stream_app.core.timeutil import MINUTE_MS, format_ms

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


KEY = {"cx.tickets": "ticket_id", "cx.chats": "chat_id", "cx.surveys": "response_id"}


def now_ms() -> int:
    return int(time.time() * 1000)


def records(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(topic, str(ev[KEY[topic]]).encode(), encode(ev)) for topic, ev in events]


def seed_mix(ch: str, t: int, queue: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Seed 004's examples plus tickets and chats with known timings (all in `queue`
    when given)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if queue is not None:
        return [(topic, {**ev, "queue": queue}) for topic, ev in seed_mix(ch, t)]
    for i in range(100):  # 60 of 100 satisfied → CSAT 0.60
        out.append(("cx.surveys", survey("csat", 5 if i < 60 else 2, t - i * 1000, ch)))
    for i in range(100):  # 50 promoters, 27 detractors → NPS 23
        score = 10 if i < 50 else (3 if i < 77 else 8)
        out.append(("cx.surveys", survey("nps", score, t - i * 1000, ch)))
    for i in range(10):
        out.append(("cx.surveys", survey("ces", 6 if i < 7 else 2, t - i * 1000, ch)))
    for i in range(20):
        tid = f"{ch}-t{i}"
        created = t - 10 * MINUTE_MS + i * 1000
        out.append(("cx.tickets", event("ticket.created", created, ch, ticket_id=tid, priority="normal")))
        out.append(
            ("cx.tickets", event("ticket.agent_replied", created + (i + 1) * 10_000, ch, ticket_id=tid))
        )
        if i % 4:
            out.append(("cx.tickets", event("ticket.resolved", created + 4 * MINUTE_MS, ch, ticket_id=tid)))
        if i % 5 == 0:
            out.append(("cx.tickets", event("ticket.customer_replied", created + 60_000, ch, ticket_id=tid)))
    for i in range(12):
        cid = f"{ch}-c{i}"
        started = t - 8 * MINUTE_MS + i * 1000
        out.append(("cx.chats", event("chat.started", started, ch, chat_id=cid)))
        if i % 6:
            out.append(("cx.chats", event("chat.agent_joined", started + i * 5000, ch, chat_id=cid)))
            out.append(
                ("cx.chats", event("chat.message", started + i * 6000, ch, chat_id=cid, sender="agent"))
            )
        out.append(
            ("cx.chats", event("chat.ended", started + 3 * MINUTE_MS, ch, chat_id=cid, resolved=i % 3 != 0))
        )
    return out
