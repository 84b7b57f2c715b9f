"""Zendesk export audits → the webhook payloads → §3 events (the backfill's mapping)."""

from __future__ import annotations

from typing import Any

import pytest

from stream_app.connectors.mapped import Ignored, Unmappable
from stream_app.connectors.zendesk import map_webhook
from stream_app.connectors.zendesk_export import audit_payloads
from tests.unit.connectors.fixtures import fixture, valid_events


def test_a_ticket_s_audits_map_like_its_webhooks() -> None:
    tickets: dict[str, dict[str, Any]] = {}
    out = []
    skipped = []
    for page in fixture("zendesk_export")["pages"]:
        for audit in page["ticket_events"]:
            try:
                payloads = audit_payloads(audit, tickets)
            except Unmappable as exc:
                skipped.append(str(exc))
                continue
            for payload in payloads:
                result = map_webhook(payload)
                if isinstance(result, Ignored):
                    out.append(("ignored", result.reason))
                    continue
                for event in valid_events(result):
                    out.append(
                        (
                            event["event_type"],
                            event["occurred_at"],
                            event.get("status"),
                            event.get("agent_id"),
                        )
                    )
    assert out == [
        ("ticket.created", "2026-11-30T09:00:00.000Z", None, None),
        ("ignored", "the ticket's description is not a reply"),
        ("ticket.agent_replied", "2026-11-30T09:20:00.000Z", None, "7101"),
        ("ticket.status_changed", "2026-11-30T09:20:00.000Z", "pending", None),
        ("ignored", "an internal note is not a reply"),
        ("ticket.resolved", "2026-11-30T09:25:00.000Z", None, None),
    ]
    assert skipped == ["ticket 6002: created before the backfill's start"]
    assert tickets["6001"]["priority"] == "high" and tickets["6001"]["group_id"] == "360022"


def test_a_comment_has_the_same_id_from_the_export_and_from_the_webhook() -> None:
    tickets: dict[str, dict[str, Any]] = {}
    pages = fixture("zendesk_export")["pages"]
    audit_payloads(pages[0]["ticket_events"][0], tickets)
    reply = audit_payloads(pages[1]["ticket_events"][0], tickets)[0]
    (event,) = valid_events(map_webhook(reply))  # type: ignore[arg-type]
    assert event["event_id"] == "zendesk:6001:comment:91021"


@pytest.mark.parametrize("audit", [None, {"ticket_id": 1}, {"ticket_id": 1, "timestamp": 1796029200}])
def test_an_audit_without_ids_or_time_cannot_be_mapped(audit: object) -> None:
    with pytest.raises(Unmappable):
        audit_payloads(audit, {})
