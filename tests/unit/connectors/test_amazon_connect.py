"""Amazon Connect mapping: an answered call, an abandoned one, a self-service one, and
the contact record of the answered call (delivered at least once)."""

from __future__ import annotations

from stream_app.connectors.amazon_connect import map_record
from stream_app.connectors.mapped import Ignored
from tests.unit.connectors.fixtures import fixture, valid_events


def events_of(payloads: list[object]) -> list[dict[str, object]]:
    out = []
    for payload in payloads:
        result = map_record(payload)
        if not isinstance(result, Ignored):
            out.extend(valid_events(result))
    return out


def test_contact_events_map_to_queue_steps() -> None:
    events = events_of(fixture("amazon_connect")["contact_events"])
    assert [(e["chat_id"][-1], e["event_type"], e["occurred_at"]) for e in events] == [
        ("1", "chat.started", "2026-11-30T10:00:10.000Z"),
        ("1", "chat.agent_joined", "2026-11-30T10:00:40.000Z"),
        ("1", "chat.ended", "2026-11-30T10:06:00.000Z"),
        ("2", "chat.started", "2026-11-30T10:01:00.000Z"),
        ("2", "chat.ended", "2026-11-30T10:03:00.000Z"),  # abandoned: never reached an agent
    ]
    assert {(e["channel"], e["queue"]) for e in events} == {("phone", "q-billing-0001")}
    assert events[1]["agent_id"] == "ag-7001"


def test_a_contact_record_is_the_same_events_as_the_contact_events() -> None:
    data = fixture("amazon_connect")
    from_events = {e["event_id"]: e["event_type"] for e in events_of(data["contact_events"][:4])}
    record = data["contact_record"]
    from_record = {e["event_id"]: e["event_type"] for e in events_of([record])}
    assert from_record == from_events  # one contact, one set of ids, whichever way it arrives
    updated = dict(record, LastUpdateTimestamp="2026-11-30T11:00:00Z")
    assert {e["event_id"] for e in events_of([updated])} == set(from_record)


def test_self_service_and_tasks_are_ignored() -> None:
    data = fixture("amazon_connect")
    assert isinstance(map_record(data["contact_events"][-1]), Ignored)
    assert isinstance(map_record(data["contact_events"][0]), Ignored)  # INITIATED: still in the IVR
    task = dict(data["contact_record"], Channel="TASK")
    assert isinstance(map_record(task), Ignored)
    no_queue = dict(data["contact_record"], Queue=None)
    assert isinstance(map_record(no_queue), Ignored)


def test_a_transfer_leg_belongs_to_the_first_contact_and_counts_once() -> None:
    from stream_app.core.lifecycle import LifecycleRules, apply_chat_event, chat_facts
    from stream_app.core.timeutil import parse_rfc3339_ms

    data = fixture("amazon_connect")
    leg = events_of(data["transfer_leg"])
    first = "c0ffee00-0000-4000-8000-000000000001"
    assert [(e["chat_id"], e["event_type"]) for e in leg] == [
        (first, "chat.transferred"),
        (first, "chat.agent_joined"),
        (first, "chat.ended"),
    ]
    assert all(str(e["event_id"]).startswith("connect:c0ffee00-0000-4000-8000-000000000004:") for e in leg)
    # Fold both legs through the pure core: one call, one start, the first leg's 30 s wait.
    state: dict[str, object] = {}
    for event in [*events_of(data["contact_events"][:4]), *leg]:
        apply_chat_event(state, event, parse_rfc3339_ms(str(event["occurred_at"])))
    facts = chat_facts(state, LifecycleRules())
    assert [f[2] for f in facts].count("chat_started") == 1
    assert [(f[2], f[3]) for f in facts if f[2] == "chat_wait"] == [("chat_wait", 30_000)]
    # the same leg as a contact record maps to the same events
    record = dict(
        data["contact_record"], ContactId="c0ffee00-0000-4000-8000-000000000004", InitialContactId=first
    )
    assert {e["event_type"] for e in events_of([record])} == {
        "chat.transferred",
        "chat.agent_joined",
        "chat.ended",
    }
