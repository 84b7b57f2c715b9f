"""Ticket and chat state machines: the SPEC §4 definitions, case by case."""

from typing import Any

from stream_app.core.aggregate import Fact
from stream_app.core.lifecycle import (
    Keep,
    LifecycleRules,
    apply_chat_event,
    apply_ticket_event,
    chat_facts,
    expired,
    expires_at,
    ticket_facts,
    ticket_is_open,
    ticket_live,
)
from stream_app.core.sla import SlaTargets
from stream_app.core.timeutil import DAY_MS, HOUR_MS, MINUTE_MS
from tests.factories import event

T0 = 1_795_338_900_000
RULES = LifecycleRules()


def ticket(*steps: tuple[str, int], **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for kind, at in steps:
        apply_ticket_event(state, event(kind, at, "email", ticket_id="t1", **extra), at)
    return state


def chat(*steps: tuple[str, int, dict[str, Any]]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for kind, at, fields in steps:
        apply_chat_event(state, event(kind, at, "chat", chat_id="c1", **fields), at)
    return state


def kinds(facts: list[Fact], kind: str) -> list[Fact]:
    return [f for f in facts if f[2] == kind]


def test_ticket_first_response_and_resolution_times() -> None:
    state = ticket(
        ("ticket.created", T0),
        ("ticket.agent_replied", T0 + 90_000),
        ("ticket.agent_replied", T0 + 30 * MINUTE_MS),
        ("ticket.resolved", T0 + 3 * HOUR_MS),
    )
    facts = ticket_facts(state, RULES)
    assert kinds(facts, "first_response") == [("email", T0 + 90_000, "first_response", 90_000, 1)]
    assert kinds(facts, "resolution") == [("email", T0 + 3 * HOUR_MS, "resolution", 3 * HOUR_MS, 1)]
    # two agent replies before resolution: not first-contact
    assert kinds(facts, "resolved_contact") == [("email", T0 + 3 * HOUR_MS, "resolved_contact", 0, 0)]
    assert not ticket_is_open(state)


def test_fcr_one_reply_no_follow_up_is_first_contact() -> None:
    state = ticket(("ticket.created", T0), ("ticket.agent_replied", T0 + 1), ("ticket.resolved", T0 + 2))
    assert kinds(ticket_facts(state, RULES), "resolved_contact")[0][4] == 1


def test_fcr_customer_follow_up_is_not_first_contact() -> None:
    state = ticket(
        ("ticket.created", T0),
        ("ticket.agent_replied", T0 + 1),
        ("ticket.customer_replied", T0 + 2),
        ("ticket.resolved", T0 + 3),
    )
    assert kinds(ticket_facts(state, RULES), "resolved_contact")[0][4] == 0


def test_fcr_reopen_within_window_revokes_and_counts_once() -> None:
    state = ticket(("ticket.created", T0), ("ticket.resolved", T0 + HOUR_MS))
    assert kinds(ticket_facts(state, RULES), "resolved_contact")[0][4] == 1
    apply_ticket_event(
        state, event("ticket.reopened", T0 + 2 * DAY_MS, "email", ticket_id="t1"), T0 + 2 * DAY_MS
    )
    apply_ticket_event(
        state, event("ticket.resolved", T0 + 3 * DAY_MS, "email", ticket_id="t1"), T0 + 3 * DAY_MS
    )
    contacts = kinds(ticket_facts(state, RULES), "resolved_contact")
    # still one resolved contact, in the window of the first resolution, credit revoked
    assert contacts == [("email", T0 + HOUR_MS, "resolved_contact", 0, 0)]


def test_fcr_reopen_after_window_keeps_credit() -> None:
    state = ticket(
        ("ticket.created", T0), ("ticket.resolved", T0 + 1), ("ticket.reopened", T0 + 1 + 8 * DAY_MS)
    )
    assert kinds(ticket_facts(state, RULES), "resolved_contact")[0][4] == 1
    assert ticket_is_open(state)


def test_open_backlog_follows_resolve_and_reopen() -> None:
    state = ticket(("ticket.created", T0))
    assert kinds(ticket_live(state, RULES), "open")
    apply_ticket_event(state, event("ticket.resolved", T0 + 5, "email", ticket_id="t1"), T0 + 5)
    assert not kinds(ticket_live(state, RULES), "open")
    apply_ticket_event(state, event("ticket.reopened", T0 + 9, "email", ticket_id="t1"), T0 + 9)
    assert kinds(ticket_live(state, RULES), "open")


def test_sla_uses_preset_and_priority_override() -> None:
    rules = LifecycleRules(SlaTargets("it_services", {("*", "urgent", "first_response"): 10 * MINUTE_MS}))
    normal = ticket(("ticket.created", T0), ("ticket.agent_replied", T0 + 30 * MINUTE_MS))
    urgent = ticket(("ticket.created", T0), ("ticket.agent_replied", T0 + 30 * MINUTE_MS), priority="urgent")
    assert kinds(ticket_facts(normal, rules), "first_response")[0][4] == 1  # 30 min < 2 h
    assert kinds(ticket_facts(urgent, rules), "first_response")[0][4] == 0  # 30 min > 10 min
    late = ticket(("ticket.created", T0), ("ticket.resolved", T0 + 9 * HOUR_MS))
    assert kinds(ticket_facts(late, RULES), "resolution")[0][4] == 0  # > 8 h


def test_duplicate_event_id_is_recognised() -> None:
    state: dict[str, Any] = {}
    created = event("ticket.created", T0, "email", ticket_id="t1")
    assert apply_ticket_event(state, created, T0) is True
    assert apply_ticket_event(state, dict(created), T0) is False


def test_chat_wait_first_response_and_bot_is_not_a_response() -> None:
    state = chat(
        ("chat.started", T0, {}),
        ("chat.message", T0 + 5_000, {"sender": "bot"}),
        ("chat.agent_joined", T0 + 40_000, {}),
        ("chat.message", T0 + 55_000, {"sender": "agent"}),
        ("chat.ended", T0 + 300_000, {"resolved": True}),
    )
    facts = chat_facts(state, RULES)
    assert kinds(facts, "chat_wait") == [("chat", T0 + 40_000, "chat_wait", 40_000, 0)]
    assert kinds(facts, "chat_first_response") == [("chat", T0 + 55_000, "chat_first_response", 55_000, 1)]
    assert kinds(facts, "chat_ended") == [("chat", T0 + 300_000, "chat_ended", 0, 0)]
    assert kinds(facts, "resolved_contact") == [("chat", T0 + 300_000, "resolved_contact", 0, 1)]


def test_chat_abandoned_before_agent_joined() -> None:
    state = chat(("chat.started", T0, {}), ("chat.ended", T0 + 60_000, {}))
    facts = chat_facts(state, RULES)
    assert kinds(facts, "chat_ended")[0][4] == 1
    assert not kinds(facts, "resolved_contact")


def test_chat_transfer_loses_first_contact() -> None:
    state = chat(
        ("chat.started", T0, {}),
        ("chat.agent_joined", T0 + 1, {}),
        ("chat.transferred", T0 + 2, {}),
        ("chat.ended", T0 + 3, {"resolved": True}),
    )
    assert kinds(chat_facts(state, RULES), "resolved_contact")[0][4] == 0


def test_expiry_keeps_open_work_and_drops_closed_after_retention_and_reopen_window() -> None:
    closed = ticket(("ticket.created", T0), ("ticket.resolved", T0 + 1))
    still_open = ticket(("ticket.created", T0))
    keep = Keep.of(DAY_MS, RULES, 30 * DAY_MS)  # closed work: max(retention, 7-day reopen window)
    assert not expired("ticket", closed, T0 + 2 * DAY_MS, keep)
    assert not expired("ticket", closed, T0 + 1 + 7 * DAY_MS, keep)
    assert expired("ticket", closed, T0 + 2 + 7 * DAY_MS, keep)
    assert not expired("ticket", still_open, T0 + 8 * DAY_MS, keep)
    assert expired("ticket", still_open, T0 + 31 * DAY_MS, keep)


def test_expiry_deadline_matches_expired() -> None:
    keep = Keep(closed_ms=500, open_ms=10_000, survey_ms=100)
    answered = {"lt": 1_000}  # a survey response is kept for retention
    assert expires_at("survey", answered, keep) == 1_100
    assert not expired("survey", answered, 1_100, keep)
    assert expired("survey", answered, 1_101, keep)
    open_ticket = {"lt": 1_000, "cr": [1_000, 1, "email", "normal"]}  # never resolved: the open TTL
    assert expires_at("ticket", open_ticket, keep) == 11_000
    assert expires_at("ticket", {"lt": 1_000, "rs": [1_000, 1_000]}, keep) == 1_500
    assert expires_at("ticket", {}, keep) is None
