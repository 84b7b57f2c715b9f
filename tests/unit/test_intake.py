"""Every record gets exactly one outcome, and bad input a precise reason."""

import pytest

from stream_app.core.intake import DUPLICATE, Accepted, Intake, Rejected
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS, format_ms, parse_rfc3339_ms
from tests.factories import encode, event, survey

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")


def reason(intake: Intake, topic: str, raw: bytes | None) -> str | None:
    outcome = intake.process(topic, raw, NOW, {})
    return outcome.reason if isinstance(outcome, Rejected) else None


@pytest.mark.parametrize(
    ("topic", "raw", "expected"),
    [
        ("cx.tickets", b"{not json", "invalid_json"),
        ("cx.tickets", b"", "invalid_json"),
        ("cx.tickets", None, "invalid_json"),
        ("cx.tickets", b"\xff\xfe", "invalid_json"),
        ("cx.tickets", b"[1, 2]", "schema"),
        ("cx.tickets", encode({"event_id": "x"}), "schema"),
        ("cx.tickets", encode(event("chat.started", NOW, ticket_id="t")), "schema"),
        ("cx.tickets", encode(event("ticket.created", NOW, ticket_id=7)), "schema"),
        ("cx.tickets", encode(event("ticket.created", NOW, ticket_id="t", priority="asap")), "schema"),
        ("cx.chats", encode(event("chat.message", NOW, chat_id="c")), "schema"),  # no sender
        ("cx.tickets", encode(event("ticket.created", NOW, "fax", ticket_id="t")), "unknown_channel"),
        ("cx.surveys", encode(survey("csat", 6, NOW)), "score_out_of_range"),
        ("cx.surveys", encode(survey("csat", 0, NOW)), "score_out_of_range"),
        ("cx.surveys", encode(survey("nps", 11, NOW)), "score_out_of_range"),
        ("cx.surveys", encode(survey("ces", 6, NOW, scale=5)), "score_out_of_range"),
        ("cx.surveys", encode(survey("csat", 3, NOW, scale=7)), "schema"),
        ("cx.surveys", encode(survey("csat", 4.5, NOW)), "schema"),
        ("cx.surveys", encode(survey("csat", 5, NOW - 26 * HOUR_MS)), "too_late"),
        ("cx.tickets", encode(event("ticket.created", NOW + 6 * MINUTE_MS, ticket_id="t")), "from_future"),
    ],
)
def test_dead_letter_reasons(intake: Intake, topic: str, raw: bytes | None, expected: str) -> None:
    assert reason(intake, topic, raw) == expected


def test_timestamp_without_offset_is_a_schema_error(intake: Intake) -> None:
    bad = event("ticket.created", NOW, ticket_id="t")
    bad["occurred_at"] = "2026-11-22T09:15:00"
    assert reason(intake, "cx.tickets", encode(bad)) == "schema"


def test_extra_fields_are_accepted(intake: Intake) -> None:
    outcome = intake.process("cx.tickets", encode(event("ticket.created", NOW, ticket_id="t", x=1)), NOW, {})
    assert isinstance(outcome, Accepted)


def test_survey_counted_once_per_response_id(intake: Intake) -> None:
    store: dict = {}
    first = survey("csat", 5, NOW, response_id="r1")
    assert isinstance(intake.process("cx.surveys", encode(first), NOW, store), Accepted)
    assert intake.process("cx.surveys", encode(first), NOW, store) == DUPLICATE
    # the same response again under a new event_id is a version of it, not a second response
    again = survey("csat", 5, NOW, response_id="r1")
    outcome = intake.process("cx.surveys", encode(again), NOW, store)
    assert isinstance(outcome, Accepted) and sum(sign for _, sign in outcome.delta) == 0


def test_ticket_replay_is_duplicate_and_changes_nothing(intake: Intake) -> None:
    store: dict = {}
    created = encode(event("ticket.created", NOW, ticket_id="t1"))
    first = intake.process("cx.tickets", created, NOW, store)
    assert isinstance(first, Accepted) and first.delta
    assert intake.process("cx.tickets", created, NOW, store) == DUPLICATE


def test_out_of_order_reply_retracts_previous_first_response(intake: Intake) -> None:
    store: dict = {}
    for at in (NOW - 10 * MINUTE_MS,):
        intake.process("cx.tickets", encode(event("ticket.created", at, ticket_id="t1")), NOW, store)
    later = intake.process(
        "cx.tickets", encode(event("ticket.agent_replied", NOW - 2 * MINUTE_MS, ticket_id="t1")), NOW, store
    )
    earlier = intake.process(
        "cx.tickets", encode(event("ticket.agent_replied", NOW - 8 * MINUTE_MS, ticket_id="t1")), NOW, store
    )
    assert isinstance(later, Accepted) and isinstance(earlier, Accepted)
    signs = sorted((fact[2], fact[3], sign) for fact, sign in earlier.delta if fact[2] == "first_response")
    assert signs == [("first_response", 2 * MINUTE_MS, 1), ("first_response", 8 * MINUTE_MS, -1)]


def test_expire_retracts_backlog_of_abandoned_open_tickets(intake: Intake) -> None:
    store: dict = {}
    intake.process("cx.tickets", encode(event("ticket.created", NOW, ticket_id="t1")), NOW, store)
    assert intake.expire("ticket", store, NOW + 30 * 24 * HOUR_MS)[0] == []  # the TTL is 30 days
    gone, retract, still_open = intake.expire("ticket", store, NOW + 31 * 24 * HOUR_MS)
    assert gone == ["t1"] and not store and still_open == 1
    # the backlog and both of its SLA due times leave the live queue
    assert sorted((f[2], s) for f, s in retract) == [
        ("first_response_due", -1),
        ("open", -1),
        ("resolution_due", -1),
    ]


def test_rfc3339_offsets_are_respected(intake: Intake) -> None:
    store: dict = {}
    tokyo = event("ticket.created", NOW, ticket_id="t1")
    tokyo["occurred_at"] = "2026-11-22T18:15:30+09:00"
    assert format_ms(intake.decode("cx.tickets", encode(tokyo), NOW).at_ms) == format_ms(NOW)  # type: ignore[union-attr]
    del store


def test_deeply_nested_json_is_a_schema_error_not_a_crash(intake: Intake) -> None:
    for depth in (900, 1023):
        outcome = intake.process("cx.surveys", b"[" * depth + b"]" * depth, 0, {})
        assert isinstance(outcome, Rejected) and outcome.reason == "schema", outcome
    too_deep = intake.process("cx.tickets", b"[" * 5000 + b"]" * 5000, 0, {})
    assert isinstance(too_deep, Rejected) and too_deep.reason == "invalid_json"
