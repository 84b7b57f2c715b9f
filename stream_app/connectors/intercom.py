"""Intercom → SPEC §3: conversation webhooks (pure mapping).

Source: Intercom webhook notifications (https://developers.intercom.com/docs/webhooks/webhook-models
and the conversation model https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/conversation):
`{"type": "notification_event", "topic", "id", "created_at", "data": {"item": <conversation>}}`,
times in Unix seconds. A conversation is a §3 chat (`chat_id` = conversation id).

| topic | §3 event |
|---|---|
| `conversation.user.created` | `chat.started` (+ `chat.message` customer) |
| `conversation.user.replied` | `chat.message` sender `customer` |
| `conversation.admin.replied` | `chat.message` sender `agent` (a bot/operator author: `bot`) |
| `conversation.admin.assigned` | `chat.agent_joined` (the assigned teammate) |
| `conversation.admin.closed` | `chat.ended` |
| `conversation.rating.added` | `survey.submitted` csat, scale 5 |
| `conversation.admin.snoozed` | nothing: §3 chats have no pending state (see docs/connectors.md) |

`event_id`s come from Intercom's ids: the conversation part's id where the
topic is about a part, else the notification id, which Intercom keeps when it
retries a delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream_app.connectors.mapped import (
    CHATS,
    SURVEYS,
    Ignored,
    Mapped,
    Unmappable,
    field,
    ident,
    optional_ident,
    rfc3339,
)

#: `source.type` / `source.delivered_as` of the conversation → §3 channel.
SOURCE_CHANNELS: dict[str, str] = {
    "conversation": "chat",
    "chat": "chat",
    "email": "email",
    "sms": "sms",
    "phone_call": "phone",
    "call": "phone",
    "twitter": "social",
    "facebook": "social",
    "instagram": "social",
    "whatsapp": "social",
}

BOT_AUTHORS = ("bot", "operator")


def channel_of(conversation: Any, overrides: Mapping[str, str]) -> str:
    kind = field(conversation, "source", "type")
    if not isinstance(kind, str) or not kind:
        raise Unmappable("data.item.source.type is missing")
    channel = overrides.get(kind.lower()) or SOURCE_CHANNELS.get(kind.lower()) or overrides.get("*")
    if channel is None:
        raise Unmappable(
            f"source type {kind[:40]!r} has no channel mapping"
            f" (STREAM_APP_INTERCOM_CHANNELS={kind[:40]}:<channel>)"
        )
    return channel


def _last_part(conversation: Any, part_types: tuple[str, ...]) -> dict[str, Any] | None:
    parts = field(conversation, "conversation_parts", "conversation_parts")
    if not isinstance(parts, list):
        return None
    for part in reversed(parts):
        if isinstance(part, dict) and part.get("part_type") in part_types:
            return part
    return None


def map_notification(payload: Any, overrides: Mapping[str, str] | None = None) -> list[Mapped] | Ignored:
    """One Intercom webhook body → its §3 events (or why there are none).

    Shape: the decoded JSON notification (module doc). Raises `Unmappable`.
    """
    overrides = overrides or {}
    if not isinstance(payload, dict) or payload.get("type") != "notification_event":
        raise Unmappable("not an Intercom notification: `type` is not notification_event")
    topic = payload.get("topic")
    if not isinstance(topic, str):
        raise Unmappable("topic is missing")
    if topic == "ping":
        return Ignored("ping")
    if not topic.startswith("conversation."):
        return Ignored(f"{topic[:60]} is not a conversation topic")
    conversation = field(payload, "data", "item")
    chat_id = ident(field(conversation, "id"), "data.item.id")
    notification_id = ident(payload.get("id"), "id")
    base: dict[str, Any] = {"chat_id": chat_id, "channel": channel_of(conversation, overrides)}
    queue = optional_ident(field(conversation, "team_assignee_id"))
    if queue is not None:
        base["queue"] = queue

    def chat(event_type: str, event_id: str, when: Any, **extra: Any) -> Mapped:
        return Mapped(
            CHATS,
            chat_id,
            {
                "event_id": event_id,
                "event_type": event_type,
                "occurred_at": rfc3339(when, "created_at"),
                **base,
                **extra,
            },
        )

    if topic == "conversation.user.created":
        started = field(conversation, "created_at")
        return [
            chat("chat.started", f"intercom:{chat_id}:started", started),
            chat("chat.message", f"intercom:{chat_id}:first-message", started, sender="customer"),
        ]
    if topic in ("conversation.user.replied", "conversation.admin.replied"):
        part = _last_part(conversation, ("comment",))
        if part is None:
            raise Unmappable("the reply's conversation part is missing")
        part_id = ident(part.get("id"), "conversation part id")
        author = field(part, "author", "type")
        if topic == "conversation.user.replied":
            sender, extra = "customer", {}
        else:
            sender = "bot" if author in BOT_AUTHORS else "agent"
            agent = optional_ident(field(part, "author", "id"))
            extra = {"agent_id": agent} if agent and sender == "agent" else {}
        return [
            chat(
                "chat.message",
                f"intercom:{chat_id}:part:{part_id}",
                part.get("created_at"),
                sender=sender,
                **extra,
            )
        ]
    if topic == "conversation.admin.assigned":
        part = _last_part(conversation, ("assignment", "assign_and_reopen", "assign_and_unsnooze"))
        # Only a teammate joins: an assignment to a team (or to "nobody") is routing.
        if part is not None:
            assignee = field(part, "assigned_to")
            agent = optional_ident(field(assignee, "id")) if field(assignee, "type") == "admin" else None
        else:
            agent = optional_ident(field(conversation, "admin_assignee_id"))
        if agent is None:
            return Ignored("assigned to a team or to nobody: no agent joined")
        when = field(part, "created_at") if part is not None else payload.get("created_at")
        part_id = optional_ident(field(part, "id")) or notification_id
        return [chat("chat.agent_joined", f"intercom:{chat_id}:part:{part_id}", when, agent_id=agent)]
    if topic == "conversation.admin.closed":
        part = _last_part(conversation, ("close",))
        when = field(part, "created_at") if part is not None else payload.get("created_at")
        part_id = optional_ident(field(part, "id")) or notification_id
        # Closed with a teammate assigned: the teammate considers it resolved. Closed
        # with no teammate, nothing says the customer was helped (a bot's resolution
        # state is not in the webhook): no `resolved`, so it counts as abandoned,
        # never as contained by self-service.
        resolved = {"resolved": True} if optional_ident(field(conversation, "admin_assignee_id")) else {}
        return [chat("chat.ended", f"intercom:{chat_id}:part:{part_id}", when, **resolved)]
    if topic == "conversation.rating.added":
        rating = field(conversation, "conversation_rating")
        score = field(rating, "rating")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise Unmappable("conversation_rating.rating is not 1–5")
        when = rfc3339(field(rating, "created_at"), "conversation_rating.created_at")
        survey: dict[str, Any] = {
            "event_id": f"intercom:{chat_id}:rating:{when}:{score}",
            "event_type": "survey.submitted",
            "response_id": f"intercom:{chat_id}",
            "survey": "csat",
            "score": score,
            "scale": 5,
            "chat_id": chat_id,
            "channel": base["channel"],
            "occurred_at": when,
        }
        if "queue" in base:
            survey["queue"] = base["queue"]
        agent = optional_ident(field(rating, "teammate", "id"))
        if agent is not None:
            survey["agent_id"] = agent
        return [Mapped(SURVEYS, survey["response_id"], survey)]
    return Ignored(f"{topic[:60]} carries nothing §3 measures")
