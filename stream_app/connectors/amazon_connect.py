"""Amazon Connect → SPEC §3: contact events and contact records (pure mapping).

Sources (public references; mapping table in docs/connectors.md):
- Contact events on Amazon EventBridge (`detail-type` "Amazon Connect Contact
  Event"): https://docs.aws.amazon.com/connect/latest/adminguide/contact-events.html
  (`detail.eventType` INITIATED, QUEUED, CONNECTED_TO_AGENT, DISCONNECTED, …).
- Contact records (the CTR stream on Kinesis):
  https://docs.aws.amazon.com/connect/latest/adminguide/ctr-data-model.html
  (`ContactId`, `Channel`, `Queue.EnqueueTimestamp`, `Agent.ConnectedToAgentTimestamp`,
  `DisconnectTimestamp`, `LastUpdateTimestamp`).

A contact is a §3 chat (`chat_id` = ContactId): entering a queue starts it,
the agent connection is the agent joining, the disconnect ends it; a contact
that disconnects while queued is an abandonment (SPEC §4). Time in the IVR
before the queue is not waiting for an agent, so INITIATED maps to nothing, and
a contact that never queued (self-service) is ignored.

A transfer creates a new contact (a leg) whose InitialContactId is the first
one: its steps belong to the first contact's chat (`chat_id` = InitialContactId),
its entering a queue is `chat.transferred`, so one call is one contact in
volume, its wait is the first leg's, and it is not first-contact.

Contact records arrive at least once and are updated after the contact ends
(AWS: use ContactId with LastUpdateTimestamp to tell versions apart). The
`event_id`s here depend only on ContactId and the step (`connect:<id>:queued`,
`…:agent`, `…:ended`), so a redelivered record, a later version of it and the
EventBridge event for the same step are all one event to the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream_app.connectors.mapped import (
    CHATS,
    Ignored,
    Mapped,
    Unmappable,
    field,
    ident,
    last_segment,
    rfc3339,
)

CHANNELS: dict[str, str] = {"VOICE": "phone", "CHAT": "chat", "EMAIL": "email"}


def _channel(value: Any, overrides: Mapping[str, str]) -> str | Ignored:
    if not isinstance(value, str) or not value:
        raise Unmappable("Channel is missing")
    channel = overrides.get(value.lower()) or CHANNELS.get(value.upper()) or overrides.get("*")
    if channel is None:
        return Ignored(f"{value[:20]} contacts are back-office work, not customer contacts")
    return channel


def map_record(payload: Any, overrides: Mapping[str, str] | None = None) -> list[Mapped] | Ignored:
    """An EventBridge contact event or a contact record → its §3 chat events.

    Shape: the decoded JSON of either (module doc). Queue = the queue's id (the end
    of its ARN: EventBridge events carry no queue name). Raises `Unmappable`.
    """
    overrides = overrides or {}
    if not isinstance(payload, dict):
        raise Unmappable("the record is not a JSON object")
    if payload.get("detail-type") == "Amazon Connect Contact Event":
        return _contact_event(payload, overrides)
    if "ContactId" in payload:
        return _contact_record(payload, overrides)
    raise Unmappable("neither an Amazon Connect contact event nor a contact record")


def _events(
    contact: str,
    channel: str,
    queue: str | None,
    steps: list[tuple[str, str, Any, dict[str, Any]]],
    initial: str | None = None,
) -> list[Mapped]:
    """§3 chat events for one contact (leg): `initial` is the contact a transfer leg
    belongs to (its `chat_id`); the leg's own id keeps the event ids apart."""
    chat_id = initial or contact
    mapped = []
    for step, event_type, when, extra in steps:
        event: dict[str, Any] = {
            "event_id": f"connect:{contact}:{step}",
            "event_type": event_type,
            "occurred_at": rfc3339(when, f"{step} time"),
            "channel": channel,
            "chat_id": chat_id,
            **extra,
        }
        if queue is not None:
            event["queue"] = queue
        mapped.append(Mapped(CHATS, chat_id, event))
    return mapped


def _contact_event(payload: dict[str, Any], overrides: Mapping[str, str]) -> list[Mapped] | Ignored:
    detail = payload.get("detail")
    kind = field(detail, "eventType")
    contact = ident(field(detail, "contactId"), "detail.contactId")
    channel = _channel(field(detail, "channel"), overrides)
    if isinstance(channel, Ignored):
        return channel
    queue = last_segment(field(detail, "queueInfo", "queueArn"))
    initial = _initial(field(detail, "initialContactId"), contact)
    if kind == "QUEUED":
        when = field(detail, "queueInfo", "enqueueTimestamp") or payload.get("time")
        entered = "chat.transferred" if initial else "chat.started"
        return _events(contact, channel, queue, [("queued", entered, when, {})], initial)
    if kind == "CONNECTED_TO_AGENT":
        when = field(detail, "agentInfo", "connectedToAgentTimestamp") or payload.get("time")
        agent = last_segment(field(detail, "agentInfo", "agentArn"))
        return _events(
            contact,
            channel,
            queue,
            [("agent", "chat.agent_joined", when, {"agent_id": agent} if agent else {})],
            initial,
        )
    if kind == "DISCONNECTED":
        if queue is None:
            return Ignored("the contact never queued (self-service)")
        when = field(detail, "disconnectTimestamp") or payload.get("time")
        return _events(contact, channel, queue, [("ended", "chat.ended", when, {})], initial)
    if isinstance(kind, str):
        return Ignored(f"{kind[:40]} is not a queue step")
    raise Unmappable("detail.eventType is missing")


def _contact_record(payload: dict[str, Any], overrides: Mapping[str, str]) -> list[Mapped] | Ignored:
    contact = ident(payload.get("ContactId"), "ContactId")
    channel = _channel(payload.get("Channel"), overrides)
    if isinstance(channel, Ignored):
        return channel
    queue_info = payload.get("Queue")
    enqueued = field(queue_info, "EnqueueTimestamp")
    if not isinstance(queue_info, dict) or not enqueued:
        return Ignored("the contact never queued (self-service)")
    queue = last_segment(queue_info.get("ARN")) or last_segment(queue_info.get("Name"))
    initial = _initial(payload.get("InitialContactId"), contact)
    entered = "chat.transferred" if initial else "chat.started"
    steps: list[tuple[str, str, Any, dict[str, Any]]] = [("queued", entered, enqueued, {})]
    connected = field(payload, "Agent", "ConnectedToAgentTimestamp")
    if connected:
        agent = last_segment(field(payload, "Agent", "ARN")) or last_segment(
            field(payload, "Agent", "Username")
        )
        steps.append(("agent", "chat.agent_joined", connected, {"agent_id": agent} if agent else {}))
    ended = payload.get("DisconnectTimestamp")
    if ended:
        steps.append(("ended", "chat.ended", ended, {}))
    return _events(contact, channel, queue, steps, initial)


def _initial(value: Any, contact: str) -> str | None:
    """The first contact of a transferred call, when `contact` is a later leg."""
    initial = value if isinstance(value, str) and value else None
    return initial if initial is not None and initial != contact else None
