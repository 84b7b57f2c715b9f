"""Zendesk → SPEC §3: ticket event webhooks and CSAT ratings (pure mapping).

Sources (public references; mapping table in docs/connectors.md):
- Ticket event webhooks, `zendesk_event_version` 2022-11-06:
  https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/
  (`type` `zen:event-type:ticket.*`, `detail` = the ticket, `event` = the change,
  `id` = the event's id, `time` = when it happened).
- Satisfaction ratings: https://developer.zendesk.com/api-reference/ticketing/ticket-management/satisfaction_ratings/
  (`score` `offered|unoffered|good|bad|good_with_comment|bad_with_comment`; one
  rating per ticket, updated in place when the customer re-rates).
- Via channels: https://developer.zendesk.com/documentation/ticketing/reference-guides/via-object-reference/

`event_id`s come from Zendesk's ids (`zendesk:<webhook event id>`, a comment's
id, a rating's ticket + score + update time), so a webhook Zendesk retries maps
to the same ids and the worker drops it as a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream_app.connectors.mapped import (
    SURVEYS,
    TICKETS,
    Ignored,
    Mapped,
    Unmappable,
    field,
    ident,
    optional_ident,
    rfc3339,
)
from stream_app.core.timeutil import parse_rfc3339_ms

EVENT_PREFIX = "zen:event-type:ticket."

#: Zendesk `via.channel` (API names and the display names triggers print) → §3 channel.
VIA_CHANNELS: dict[str, str] = {
    "email": "email",
    "mail": "email",
    "web": "portal",
    "web_form": "portal",
    "web_widget": "portal",
    "help_center": "portal",
    "mobile": "app",
    "mobile_sdk": "app",
    "chat": "chat",
    "chat_transcript": "chat",
    "native_messaging": "chat",
    "messaging": "chat",
    "voice": "phone",
    "phone_call_inbound": "phone",
    "phone_call_outbound": "phone",
    "voicemail": "phone",
    "sms": "sms",
    "text": "sms",
    "twitter": "social",
    "facebook": "social",
    "instagram_dm": "social",
    "whatsapp": "social",
    "line": "social",
    "wechat": "social",
}

PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"}

#: Zendesk status → our reading: open-like, pending, on_hold, or solved-like.
_OPEN, _PENDING, _HOLD, _SOLVED = "open", "pending", "on_hold", "solved"
STATUSES = {
    "new": _OPEN,
    "open": _OPEN,
    "pending": _PENDING,
    "hold": _HOLD,
    "on-hold": _HOLD,
    "on_hold": _HOLD,
    "solved": _SOLVED,
    "closed": _SOLVED,
}


def channel_of(via: Any, overrides: Mapping[str, str]) -> str:
    """The §3 channel of a Zendesk `via.channel` value.

    Raises `Unmappable` for a channel with no mapping (e.g. `api`: Zendesk does not
    say where an API-created ticket came from; `closed_ticket`: a follow-up, whose
    original channel the payload does not carry); `overrides`
    (STREAM_APP_ZENDESK_CHANNELS) supply or replace mappings, `*` for all the rest.
    """
    if not isinstance(via, str) or not via:
        raise Unmappable("detail.via.channel is missing")
    name = via.strip().lower().replace(" ", "_")
    channel = overrides.get(name) or VIA_CHANNELS.get(name) or overrides.get("*")
    if channel is None:
        raise Unmappable(
            f"via channel {via[:40]!r} has no channel mapping (STREAM_APP_ZENDESK_CHANNELS={name}:<channel>)"
        )
    return channel


def _is_description(comment_time: str, created_at: Any) -> bool:
    """Whether a comment was added with the ticket (within a second of its creation)."""
    if not isinstance(created_at, str):
        return False
    try:
        added, created = (
            parse_rfc3339_ms(comment_time),
            parse_rfc3339_ms(rfc3339(created_at, "detail.created_at")),
        )
    except (Unmappable, ValueError):
        return False
    return added - created <= 1000


def _status(value: Any) -> str | None:
    return STATUSES.get(value.strip().lower()) if isinstance(value, str) else None


def _ticket_fields(ticket: Any, overrides: Mapping[str, str]) -> dict[str, Any]:
    """The fields every ticket event carries, from the webhook's `detail` (the ticket)."""
    fields: dict[str, Any] = {
        "ticket_id": ident(field(ticket, "id"), "detail.id"),
        "channel": channel_of(field(ticket, "via", "channel"), overrides),
    }
    priority = field(ticket, "priority")
    if isinstance(priority, str) and priority.lower() in PRIORITIES:
        fields["priority"] = PRIORITIES[priority.lower()]
    queue = optional_ident(field(ticket, "group_id"))
    if queue is not None:
        fields["queue"] = queue
    agent = optional_ident(field(ticket, "assignee_id"))
    if agent is not None:
        fields["agent_id"] = agent
    return fields


def map_webhook(payload: Any, overrides: Mapping[str, str] | None = None) -> list[Mapped] | Ignored:
    """One Zendesk webhook body → its §3 events (or why there are none).

    Shapes: `payload` is the decoded JSON body: a ticket event
    (`{"type": "zen:event-type:ticket.…", "id", "time", "detail", "event"}`) or a
    CSAT rating (`{"satisfaction_rating": {...}, "ticket": {...}}`, see `map_rating`).
    Raises `Unmappable`.
    """
    overrides = overrides or {}
    if not isinstance(payload, dict):
        raise Unmappable("the body is not a JSON object")
    if "satisfaction_rating" in payload:
        return map_rating(payload, overrides)
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind.startswith("zen:event-type:"):
        raise Unmappable("not a Zendesk event webhook: `type` is not zen:event-type:…")
    if not kind.startswith(EVENT_PREFIX):
        return Ignored(f"{kind[:60]} is not a ticket event")
    name = kind[len(EVENT_PREFIX) :]
    event_id = "zendesk:" + ident(payload.get("id"), "id")
    occurred_at = rfc3339(payload.get("time"), "time")
    base = {"occurred_at": occurred_at, **_ticket_fields(payload.get("detail"), overrides)}
    key = base["ticket_id"]

    def event(event_type: str, suffix: str = "", **extra: Any) -> Mapped:
        return Mapped(
            TICKETS, key, {"event_id": event_id + suffix, "event_type": event_type, **base, **extra}
        )

    change = payload.get("event")
    if name == "created":
        created = [event("ticket.created")]
        status = _status(field(payload, "detail", "status"))
        if status in (_PENDING, _HOLD):  # created straight into pending/on-hold
            created.append(event("ticket.status_changed", ":status", status=status))
        elif status == _SOLVED:  # logged already solved (a call an agent wrote up)
            created.append(event("ticket.resolved", ":status"))
        return created
    if name == "comment_added":
        comment = field(change, "comment")
        if field(comment, "is_public") is not True:
            return Ignored("an internal note is not a reply")
        author = field(comment, "author")
        comment_id = ident(field(comment, "id"), "event.comment.id")
        if _is_description(occurred_at, field(payload, "detail", "created_at")):
            # Zendesk adds the ticket's first comment (its description) as a comment:
            # not a reply, or every ticket would have a customer follow-up (no FCR)
            # or, created by an agent, a first reply at 0 s.
            return Ignored("the ticket's description is not a reply")
        mapped_id = f"zendesk:{key}:comment:{comment_id}"
        staff = field(author, "is_staff")
        if not isinstance(staff, bool):
            raise Unmappable("event.comment.author.is_staff is missing")
        fields = {**base, "event_id": mapped_id}
        if staff:
            author_id = optional_ident(field(author, "id"))
            if author_id is not None:
                fields["agent_id"] = author_id
            return [Mapped(TICKETS, key, {**fields, "event_type": "ticket.agent_replied"})]
        return [Mapped(TICKETS, key, {**fields, "event_type": "ticket.customer_replied"})]
    if name == "status_changed":
        current, previous = _status(field(change, "current")), _status(field(change, "previous"))
        if current is None:
            raise Unmappable(f"event.current {str(field(change, 'current'))[:20]!r} is not a Zendesk status")
        if current == _SOLVED:
            if previous == _SOLVED:  # solved → closed: still the same resolution
                return Ignored("solved → closed is not a new resolution")
            return [event("ticket.resolved")]
        mapped: list[Mapped] = []
        if previous == _SOLVED:
            mapped.append(event("ticket.reopened"))
        if current in (_PENDING, _HOLD) or previous in (_PENDING, _HOLD):
            mapped.append(event("ticket.status_changed", ":status", status=current))
        return mapped or Ignored("new → open changes nothing measured")
    return Ignored(f"ticket.{name[:40]} carries nothing measured (priority and group ride on every event)")


def map_rating(payload: dict[str, Any], overrides: Mapping[str, str]) -> list[Mapped] | Ignored:
    """A Zendesk CSAT rating → `survey.offered` or `survey.submitted` (csat).

    Shape: `{"satisfaction_rating": {"ticket_id", "score", "updated_at"|"created_at",
    "assignee_id"?, "group_id"?, "comment"?}, "ticket": {"via": {"channel"}}}`: the
    rating object of Zendesk's Satisfaction Ratings API plus the ticket's channel,
    which the rating does not carry (docs/connectors.md gives the trigger body).
    `good`/`bad` are CSAT scale 2 (2 = good); a numeric `score` 1–5 (Zendesk's
    newer CSAT surveys) is scale 5. A re-rating has a later `updated_at`: the
    worker counts the latest version of response `zendesk:<ticket id>`.
    """
    rating = payload["satisfaction_rating"]
    ticket_id = ident(field(rating, "ticket_id"), "satisfaction_rating.ticket_id")
    channel = channel_of(field(payload, "ticket", "via", "channel"), overrides)
    when = rfc3339(
        field(rating, "updated_at") or field(rating, "created_at"), "satisfaction_rating.updated_at"
    )
    score = field(rating, "score")
    base: dict[str, Any] = {
        "response_id": f"zendesk:{ticket_id}",
        "survey": "csat",
        "ticket_id": ticket_id,
        "channel": channel,
        "occurred_at": when,
    }
    queue = optional_ident(field(rating, "group_id")) or optional_ident(field(payload, "ticket", "group_id"))
    if queue is not None:
        base["queue"] = queue
    key = base["response_id"]
    if isinstance(score, str) and score.strip().lower() == "offered":
        return [
            Mapped(
                SURVEYS,
                key,
                {**base, "event_id": f"zendesk:csat-offered:{ticket_id}", "event_type": "survey.offered"},
            )
        ]
    if isinstance(score, str) and score.strip().lower() == "unoffered":
        return Ignored("an unoffered rating is neither an offer nor an answer")
    if isinstance(score, str) and score.strip().lower().startswith(("good", "bad")):
        value, scale = (2 if score.strip().lower().startswith("good") else 1), 2
    elif isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5:
        value, scale = score, 5
    else:
        raise Unmappable(f"satisfaction_rating.score {str(score)[:20]!r} is not good, bad, offered or 1–5")
    submitted: dict[str, Any] = {
        **base,
        "event_id": f"zendesk:csat:{ticket_id}:{when}:{value}",
        "event_type": "survey.submitted",
        "score": value,
        "scale": scale,
    }
    agent = optional_ident(field(rating, "assignee_id"))
    if agent is not None:
        submitted["agent_id"] = agent
    return [Mapped(SURVEYS, key, submitted)]
