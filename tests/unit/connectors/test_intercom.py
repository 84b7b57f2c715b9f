"""Intercom mapping: a conversation answered by a bot, then an agent, then rated."""

from __future__ import annotations

import pytest

from stream_app.connectors.intercom import map_notification
from stream_app.connectors.mapped import Ignored, Unmappable
from tests.unit.connectors.fixtures import fixture, valid_events


def test_a_chat_with_a_bot_then_an_agent() -> None:
    out = []
    for payload in fixture("intercom")["chat_bot_then_agent"]:
        result = map_notification(payload)
        if isinstance(result, Ignored):
            out.append(("ignored", payload["topic"]))
            continue
        for event in valid_events(result):
            out.append((event["event_type"], event.get("sender") or event.get("score"), event["occurred_at"]))
    assert out == [
        ("chat.started", None, "2026-11-30T09:00:00.000Z"),
        ("chat.message", "customer", "2026-11-30T09:00:00.000Z"),
        ("chat.message", "bot", "2026-11-30T09:00:05.000Z"),  # not a response
        ("chat.agent_joined", None, "2026-11-30T09:01:00.000Z"),
        ("chat.message", "agent", "2026-11-30T09:01:30.000Z"),
        ("chat.message", "customer", "2026-11-30T09:02:00.000Z"),
        ("ignored", "conversation.admin.snoozed"),
        ("chat.ended", None, "2026-11-30T09:05:00.000Z"),
        ("survey.submitted", 5, "2026-11-30T09:06:40.000Z"),
    ]


def test_ids_channel_queue_and_agent() -> None:
    events = []
    for payload in fixture("intercom")["chat_bot_then_agent"]:
        result = map_notification(payload)
        if not isinstance(result, Ignored):
            events.extend(valid_events(result))
    assert {(e.get("chat_id"), e["channel"], e["queue"]) for e in events} == {("215470001", "chat", "5501")}
    assert len({e["event_id"] for e in events}) == len(events)
    joined = next(e for e in events if e["event_type"] == "chat.agent_joined")
    rating = events[-1]
    assert joined["agent_id"] == rating["agent_id"] == "8801"
    assert rating["response_id"] == "intercom:215470001" and rating["scale"] == 5
    ended = next(e for e in events if e["event_type"] == "chat.ended")
    assert ended["resolved"] is True  # closed by the assigned teammate


def test_closed_with_no_teammate_is_not_called_resolved() -> None:
    closed = fixture("intercom")["chat_bot_then_agent"][6]
    closed["data"]["item"]["admin_assignee_id"] = None
    (event,) = valid_events(map_notification(closed))  # type: ignore[arg-type]
    assert "resolved" not in event  # never counted as contained by self-service


def test_a_redelivered_notification_maps_to_the_same_ids() -> None:
    for payload in fixture("intercom")["chat_bot_then_agent"]:
        again = dict(payload, delivery_attempts=2)
        assert map_notification(payload) == map_notification(again)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(type="conversation"),
        lambda p: p["data"]["item"].pop("id"),
        lambda p: p["data"]["item"]["source"].update(type="carrier_pigeon"),
        lambda p: p["data"]["item"]["conversation_parts"].update(conversation_parts=[]),
    ],
)
def test_what_cannot_be_mapped_says_why(change: object) -> None:
    payload = fixture("intercom")["chat_bot_then_agent"][3]
    change(payload)  # type: ignore[operator]
    with pytest.raises(Unmappable):
        map_notification(payload)


@pytest.mark.parametrize("assignee", [{"type": "team", "id": "77"}, {"type": "nobody_admin", "id": None}])
def test_an_assignment_to_a_team_or_to_nobody_is_not_an_agent_joining(assignee: dict[str, object]) -> None:
    payload = fixture("intercom")["chat_bot_then_agent"][2]
    payload["data"]["item"]["conversation_parts"]["conversation_parts"][-1]["assigned_to"] = assignee
    assert isinstance(map_notification(payload), Ignored)
