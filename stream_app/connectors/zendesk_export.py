"""Zendesk's incremental ticket event export → the webhook shapes `zendesk.map_webhook`
maps (pure), for `stream-app connect zendesk --since DATE` (backfill).

Source: GET /api/v2/incremental/ticket_events.json?start_time=<unix s>
(https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-event-export):
`{"ticket_events": [audit, …], "next_page", "end_of_stream", "end_time"}`; an audit
is `{"id", "ticket_id", "timestamp" (unix s) or "created_at", "via", "child_events"}`
and its child events follow the Ticket Audit events reference
(https://developer.zendesk.com/documentation/ticketing/reference-guides/ticket-audit-events-reference):
`Create`/`Change` (`field_name`, `value`, `previous_value`) and `Comment`
(`id`, `public`, `author_id`); the kind is in `event_type` (or `type`).

The export does not say whether a comment's author is staff: an author other than
the ticket's requester counts as an agent (a CC'd colleague of the customer would
count as an agent reply; docs/connectors.md says so). One mapping for both paths:
each audit becomes the webhook payloads Zendesk would have sent, with ids
`audit-<id>`; comments keep the comment id, so a comment seen by both the
webhook and the backfill is one event.
"""

from __future__ import annotations

from typing import Any

from stream_app.connectors.mapped import Unmappable, field, ident, optional_ident, rfc3339

#: Ticket fields an audit's Create/Change events set, as the webhook's `detail` names them.
FIELDS = ("status", "priority", "group_id", "assignee_id", "requester_id")


def _kind(event: Any) -> str | None:
    kind = field(event, "event_type") or field(event, "type")
    return kind if isinstance(kind, str) else None


def _via(audit: dict[str, Any], known: Any) -> Any:
    via = audit.get("via")
    if isinstance(via, dict):
        return field(via, "channel") or known
    return via if isinstance(via, str) else known


def audit_payloads(audit: Any, tickets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One export audit → the webhook payloads it stands for, in order.

    `tickets` (ticket id → the ticket as known so far) is read and updated: an
    export lists a ticket's audits in time order, and later audits change only
    what changed. Raises `Unmappable` for an audit without ticket id or time.
    """
    if not isinstance(audit, dict):
        raise Unmappable("an export audit is not an object")
    ticket_id = ident(audit.get("ticket_id"), "ticket_id")
    when = rfc3339(audit.get("timestamp") or audit.get("created_at"), "timestamp")
    found = audit.get("child_events")
    children: list[Any] = found if isinstance(found, list) else []
    audit_id = ident(audit.get("id"), "id")
    creates = [c for c in children if _kind(c) == "Create"]
    payloads: list[dict[str, Any]] = []

    def payload(kind: str, event_id: str, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": f"zen:event-type:ticket.{kind}",
            "id": event_id,
            "time": when,
            "detail": dict(tickets[ticket_id]),
            "event": event,
        }

    if creates and ticket_id not in tickets:
        detail: dict[str, Any] = {"id": ticket_id, "created_at": when, "via": {"channel": _via(audit, None)}}
        for child in creates:
            name = field(child, "field_name")
            if name in FIELDS:
                detail[name] = field(child, "value")
        tickets[ticket_id] = detail
        payloads.append(payload("created", f"audit-{audit_id}", {}))
    ticket = tickets.get(ticket_id)
    if ticket is None:  # its creation is before the export's start: its history is missing
        raise Unmappable(f"ticket {ticket_id}: created before the backfill's start")
    for child in children:
        kind = _kind(child)
        name = field(child, "field_name")
        if kind == "Change" and name in FIELDS:
            previous = ticket.get(name)
            ticket[name] = field(child, "value")
            if name == "status":
                child_id = ident(field(child, "id"), "child event id")
                change = {"current": ticket[name], "previous": field(child, "previous_value") or previous}
                payloads.append(payload("status_changed", f"audit-{child_id}", change))
        elif kind == "Comment":
            author = optional_ident(field(child, "author_id"))
            comment = {
                "id": ident(field(child, "id"), "comment id"),
                "is_public": field(child, "public") is True,
                "author": {"id": author, "is_staff": author != optional_ident(ticket.get("requester_id"))},
            }
            payloads.append(payload("comment_added", f"audit-{comment['id']}", {"comment": comment}))
    return payloads
