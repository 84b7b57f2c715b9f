"""Zendesk mapping: a full ticket life with pending time, a reopen and a re-rated CSAT."""

from __future__ import annotations

import pytest

from stream_app.connectors.mapped import Ignored, Mapped, Unmappable
from stream_app.connectors.zendesk import map_webhook
from tests.unit.connectors.fixtures import fixture, valid_events


def mapped(payload: object) -> list[Mapped]:
    result = map_webhook(payload)
    assert not isinstance(result, Ignored), result
    return result


def test_a_ticket_life_maps_to_its_events_in_order() -> None:
    out = []
    for payload in fixture("zendesk")["ticket_life"]:
        result = map_webhook(payload)
        if isinstance(result, Ignored):
            out.append(("ignored", None, payload["time"]))
            continue
        for event in valid_events(result):
            out.append((event["event_type"], event.get("status"), event["occurred_at"]))
    assert out == [
        ("ticket.created", None, "2026-11-30T09:00:00Z"),
        ("ignored", None, "2026-11-30T09:00:00Z"),  # the description, added with the ticket
        ("ticket.agent_replied", None, "2026-11-30T09:30:00Z"),
        ("ignored", None, "2026-11-30T09:31:00Z"),  # internal note
        ("ticket.status_changed", "pending", "2026-11-30T09:30:05Z"),
        ("ticket.customer_replied", None, "2026-11-30T11:00:00Z"),
        ("ticket.status_changed", "open", "2026-11-30T11:00:01Z"),
        ("ignored", None, "2026-11-30T11:05:00Z"),  # priority change: rides on later events
        ("ticket.resolved", None, "2026-11-30T12:00:00Z"),
        ("ticket.reopened", None, "2026-11-30T13:00:00Z"),
        ("ticket.agent_replied", None, "2026-11-30T13:10:00Z"),
        ("ticket.resolved", None, "2026-11-30T14:00:00Z"),
        ("ignored", None, "2026-11-30T18:00:00Z"),  # solved → closed
    ]


def test_every_ticket_event_carries_ticket_channel_queue_and_priority() -> None:
    events = [e for p in fixture("zendesk")["ticket_life"] for e in valid_events(mapped_or_empty(p))]
    assert {(e["ticket_id"], e["channel"], e["queue"], e["priority"]) for e in events} == {
        ("5001", "portal", "360011", "normal")
    }
    replies = [e for e in events if e["event_type"] == "ticket.agent_replied"]
    assert {e["agent_id"] for e in replies} == {"7001"}


def mapped_or_empty(payload: object) -> list[Mapped]:
    result = map_webhook(payload)
    return [] if isinstance(result, Ignored) else result


def test_a_retried_webhook_maps_to_the_same_event_ids() -> None:
    for payload in fixture("zendesk")["ticket_life"]:
        assert map_webhook(payload) == map_webhook(dict(payload))
    ids = [e["event_id"] for p in fixture("zendesk")["ticket_life"] for e in valid_events(mapped_or_empty(p))]
    assert len(ids) == len(set(ids)), "distinct events must not share an id"


def test_a_re_rated_csat_is_one_response_whose_latest_version_is_bad() -> None:
    offered, good, bad = (valid_events(mapped(p)) for p in fixture("zendesk")["csat"])
    assert [e["event_type"] for e in offered] == ["survey.offered"]
    assert good[0]["score"] == 2 and good[0]["scale"] == 2
    assert bad[0]["score"] == 1 and bad[0]["scale"] == 2
    assert offered[0]["response_id"] == good[0]["response_id"] == bad[0]["response_id"] == "zendesk:5001"
    assert bad[0]["occurred_at"] > good[0]["occurred_at"]
    assert good[0]["event_id"] != bad[0]["event_id"]
    assert bad[0]["channel"] == "portal" and bad[0]["queue"] == "360011" and bad[0]["agent_id"] == "7001"


def test_a_numeric_rating_is_csat_on_a_five_point_scale() -> None:
    payload = fixture("zendesk")["csat"][1]
    payload["satisfaction_rating"]["score"] = 4
    (event,) = valid_events(mapped(payload))
    assert (event["score"], event["scale"]) == (4, 5)


def test_created_straight_into_pending_starts_the_pause() -> None:
    created = fixture("zendesk")["ticket_life"][0]
    created["detail"]["status"] = "PENDING"
    events = valid_events(mapped(created))
    assert [(e["event_type"], e.get("status")) for e in events] == [
        ("ticket.created", None),
        ("ticket.status_changed", "pending"),
    ]


def test_on_hold_after_solved_is_a_reopen_then_on_hold() -> None:
    payload = fixture("zendesk")["ticket_life"][9]
    payload["event"] = {"previous": "SOLVED", "current": "HOLD"}
    assert [(e["event_type"], e.get("status")) for e in valid_events(mapped(payload))] == [
        ("ticket.reopened", None),
        ("ticket.status_changed", "on_hold"),
    ]


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.pop("time"),
        lambda p: p["detail"].pop("id"),
        lambda p: p["detail"]["via"].update(channel="api"),
        lambda p: p.update(type="something.else"),
        lambda p: p["event"].update(current="ARCHIVED"),
    ],
)
def test_what_cannot_be_mapped_says_why(change: object) -> None:
    payload = fixture("zendesk")["ticket_life"][4]
    change(payload)  # type: ignore[operator]
    with pytest.raises(Unmappable):
        map_webhook(payload)


def test_a_channel_override_maps_api_tickets() -> None:
    payload = fixture("zendesk")["ticket_life"][0]
    payload["detail"]["via"]["channel"] = "api"
    (event,) = valid_events(map_webhook(payload, {"api": "email"}))  # type: ignore[arg-type]
    assert event["channel"] == "email"


def test_a_ticket_created_already_solved_is_resolved() -> None:
    created = fixture("zendesk")["ticket_life"][0]
    created["detail"]["status"] = "SOLVED"
    assert [e["event_type"] for e in valid_events(mapped(created))] == ["ticket.created", "ticket.resolved"]


def test_a_follow_up_ticket_takes_the_catch_all_channel_when_one_is_set() -> None:
    payload = fixture("zendesk")["ticket_life"][0]
    payload["detail"]["via"]["channel"] = "closed_ticket"
    with pytest.raises(Unmappable, match="closed_ticket"):
        map_webhook(payload)
    (event,) = valid_events(map_webhook(payload, {"*": "email"}))  # type: ignore[arg-type]
    assert event["channel"] == "email"
    payload["detail"]["via"]["channel"] = "web_form"
    (event,) = valid_events(map_webhook(payload, {"*": "email"}))  # type: ignore[arg-type]
    assert event["channel"] == "portal"  # a known channel keeps its mapping


def test_an_impossible_time_cannot_be_mapped() -> None:
    payload = fixture("zendesk")["ticket_life"][0]
    payload["time"] = "2026-02-30T25:61:00Z"
    with pytest.raises(Unmappable, match="not a real time"):
        map_webhook(payload)
