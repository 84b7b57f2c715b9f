"""Issue 13 worked examples on the pure core (intake → partials → scoreboard):
business-hours first response, pending time out of resolution, breaches that show
with no event, and attainment that counts open breaches."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from stream_app.core.business_hours import parse_schedules
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.measures import measure
from stream_app.core.replay import Replay
from stream_app.core.sla import SlaTargets
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS
from tests.factories import event
from tests.unit.conftest import make_intake

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = parse_schedules(
    {
        "calendars": {"office": {"timezone": "Europe/Berlin", "hours": {"mon-fri": "09:00-18:00"}}},
        "assign": {"channels": {"email": "office"}},
    }
)


def berlin(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp() * 1000)


def replay_of(rules: LifecycleRules, now: int) -> Replay:
    return Replay(make_intake(rules=rules), now)


def snap(replay: Replay, now: int, window: str = "24h", channel: str = "email") -> dict[str, Any]:
    return next(s for s in replay.snapshots(now) if s["channel"] == channel and s["window"] == window)


def tk(replay: Replay, kind: str, at: int, now: int, tid: str = "t1", **extra: Any) -> None:
    replay.feed("cx.tickets", event_bytes(kind, at, tid, **extra), now)


def event_bytes(kind: str, at: int, tid: str, **extra: Any) -> bytes:
    from tests.factories import encode

    return encode(event(kind, at, "email", ticket_id=tid, **extra))


def test_friday_evening_ticket_answered_monday_morning() -> None:
    # Mon-Fri 09:00-18:00 Berlin. Created Fri 2026-11-27 17:30, answered Mon 2026-11-30 09:45.
    # Business: Fri 17:30-18:00 = 30 min, Mon 09:00-09:45 = 45 min: 75 min = 4,500 s.
    # Calendar: Fri 17:30 -> Mon 09:45 = 2 days 16 h 15 min = 64 h 15 min = 231,300 s.
    created, answered = berlin("2026-11-27T17:30"), berlin("2026-11-30T09:45")
    now = answered + MINUTE_MS
    replay = replay_of(LifecycleRules(schedules=OFFICE), now)
    tk(replay, "ticket.created", created, now)
    tk(replay, "ticket.agent_replied", answered, now)
    today = snap(replay, now, "today")
    assert today["first_response_business_seconds"]["mean"] == 75 * 60 == 4_500
    assert today["first_response_seconds"]["mean"] == (64 * 60 + 15) * 60 == 231_300
    # The 2 h target is met in business time (75 min) though 64 h passed on the calendar.
    assert today["sla"]["first_response"] == {
        "value": 1.0,
        "n": 1,
        "ci95": today["sla"]["first_response"]["ci95"],
    }


def test_three_pending_business_hours_are_left_out_of_resolution() -> None:
    # Created Mon 09:00, pending 10:00-13:00 (3 business hours), resolved 15:00.
    # Calendar: 6 h. SLA clock: 6 h - 3 h pending = 3 h. A 4 h target is met only because of the pause.
    rules = LifecycleRules(
        SlaTargets("it_services", {("*", "*", "resolution"): 4 * HOUR_MS}), schedules=OFFICE
    )
    t0 = berlin("2026-11-30T09:00")
    now = t0 + 7 * HOUR_MS
    replay = replay_of(rules, now)
    # arrival order scrambled on purpose: the clocks do not depend on it
    tk(replay, "ticket.resolved", t0 + 6 * HOUR_MS, now)
    tk(replay, "ticket.status_changed", t0 + 4 * HOUR_MS, now, status="open")
    tk(replay, "ticket.created", t0, now)
    tk(replay, "ticket.status_changed", t0 + HOUR_MS, now, status="pending")
    result = snap(replay, now, "24h")
    assert result["resolution_seconds"]["mean"] == 6 * 3600
    assert result["resolution_business_seconds"]["mean"] == 3 * 3600
    assert result["sla"]["resolution"]["value"] == 1.0


def test_pending_stops_the_resolution_clock_of_an_open_ticket() -> None:
    # 24/7 (no calendar), 8 h resolution target. Pending from 1 h to 5 h: due at 12 h, not 8 h.
    t0 = berlin("2026-11-30T00:00")
    now = t0 + 9 * HOUR_MS
    replay = replay_of(LifecycleRules(), now)
    tk(replay, "ticket.created", t0, now)
    tk(replay, "ticket.agent_replied", t0 + 10 * MINUTE_MS, now)
    tk(replay, "ticket.status_changed", t0 + HOUR_MS, now, status="pending")
    assert snap(replay, now)["live"]["breaching"]["resolution"] == 0  # paused for good: cannot breach
    tk(replay, "ticket.status_changed", t0 + 5 * HOUR_MS, now, status="open")
    assert snap(replay, now)["live"]["breaching"]["resolution"] == 0  # 9 h - 4 h paused = 5 h < 8 h
    later = t0 + 12 * HOUR_MS
    assert snap(replay, later - 1000)["live"]["breaching"]["resolution"] == 0
    assert snap(replay, later)["live"]["breaching"]["resolution"] == 1


def test_an_unanswered_ticket_breaches_when_its_target_passes_with_no_event() -> None:
    t0 = berlin("2026-11-30T08:00")
    due = t0 + 2 * HOUR_MS  # it_services: 2 h first response, 24/7
    replay = replay_of(LifecycleRules(), t0)
    tk(replay, "ticket.created", t0, t0)
    before = snap(replay, due - 15 * MINUTE_MS - 1000)
    assert before["live"]["breaching"] == {"first_response": 0, "resolution": 0}
    assert before["live"]["breach_soon"]["first_response"] == 0
    soon = snap(replay, due - 15 * MINUTE_MS)
    assert soon["live"]["breach_soon"]["first_response"] == 1
    assert snap(replay, due - 1)["live"]["breaching"]["first_response"] == 0
    late = snap(replay, due, "1h")
    assert (
        late["live"]["breaching"]["first_response"] == 1
        and late["live"]["breach_soon"]["first_response"] == 0
    )
    # Attainment counts it as breached now; over answered tickets there is nothing yet.
    assert late["sla"]["first_response"]["value"] == 0.0 and late["sla"]["first_response"]["n"] == 1
    assert late["sla_closed"]["first_response"]["n"] == 0
    assert late["live"]["oldest_open_ticket_seconds"] == 2 * 3600
    # Once answered, it counts where it was answered (late), and leaves the live queue.
    answer = due + 30 * MINUTE_MS
    tk(replay, "ticket.agent_replied", answer, answer)
    after = snap(replay, answer, "1h")
    assert after["live"]["breaching"]["first_response"] == 0
    assert after["sla"]["first_response"] == after["sla_closed"]["first_response"]
    assert after["sla"]["first_response"]["n"] == 1 and after["sla"]["first_response"]["value"] == 0.0


def test_business_hours_move_the_breach_to_the_next_opening() -> None:
    # Created Fri 17:30 with a 2 h target in Mon-Fri 09:00-18:00: due Mon 10:30, not Fri 19:30.
    created = berlin("2026-11-27T17:30")
    replay = replay_of(LifecycleRules(schedules=OFFICE), created)
    tk(replay, "ticket.created", created, created)
    assert snap(replay, berlin("2026-11-28T12:00"))["live"]["breaching"]["first_response"] == 0
    assert snap(replay, berlin("2026-11-30T10:29:59"))["live"]["breaching"]["first_response"] == 0
    assert snap(replay, berlin("2026-11-30T10:30"))["live"]["breaching"]["first_response"] == 1


def test_waiting_chats_and_rules_on_the_live_queue() -> None:
    t0 = berlin("2026-11-30T10:00")
    now = t0 + 150_000
    replay = replay_of(LifecycleRules(), now)
    for i, start in enumerate((t0, t0 + 60_000, t0 + 120_000)):
        replay.feed("cx.chats", _chat("chat.started", start, f"c{i}"), now)
    replay.feed("cx.chats", _chat("chat.agent_joined", t0 + 130_000, "c2"), now)
    live = snap(replay, now, "15m", "chat")["live"]
    assert live["chats_waiting"] == 2 and live["oldest_waiting_chat_seconds"] == 150.0
    board = replay.scoreboard
    board.advance(now)
    figures = board.figures("chat")
    assert measure("oldest_waiting_chat_age", board.views("chat")["15m"], figures).value == 150.0
    assert measure("chats_waiting", board.views("chat")["15m"], figures).value == 2


def _chat(kind: str, at: int, cid: str) -> bytes:
    from tests.factories import encode

    return encode(event(kind, at, "chat", chat_id=cid))


def test_a_ticket_closed_unanswered_after_its_target_stays_a_missed_first_response() -> None:
    # Created 08:00, 2 h first-response target (it_services, 24/7), never answered,
    # resolved at 11:00: the target was missed at 10:00, and closing it keeps it missed.
    t0 = berlin("2026-11-30T08:00")
    now = t0 + 3 * HOUR_MS
    replay = replay_of(LifecycleRules(), now)
    tk(replay, "ticket.created", t0, now)
    assert snap(replay, now)["sla"]["first_response"]["n"] == 1  # open and past its target
    tk(replay, "ticket.resolved", now, now)
    after = snap(replay, now)
    assert after["sla"]["first_response"] == {
        "value": 0.0,
        "n": 1,
        "ci95": after["sla"]["first_response"]["ci95"],
    }
    assert after["sla_closed"]["first_response"]["n"] == 1
    assert after["live"]["breaching"]["first_response"] == 0
    assert after["first_response_seconds"]["n"] == 0  # no reply: no first-response time
    # Closed before its target with no reply: neither met nor missed.
    quick = replay_of(LifecycleRules(), now)
    tk(quick, "ticket.created", t0, now, tid="t2")
    tk(quick, "ticket.resolved", t0 + HOUR_MS, now, tid="t2")
    assert snap(quick, now)["sla"]["first_response"]["n"] == 0


def test_a_queue_s_first_response_target_is_the_one_its_creation_named() -> None:
    """SPEC §5 targets per queue: billing answers within 1 h, everyone else within
    the preset's 2 h. A ticket keeps the target of the queue its creation named (as
    its calendar): a later move neither re-judges a reply already counted nor changes
    a breach that is running."""
    rules = LifecycleRules(sla=SlaTargets(overrides={("queue:billing", "*", "first_response"): HOUR_MS}))
    now = berlin("2026-11-30T12:00")
    replay = replay_of(rules, now)
    tk(replay, "ticket.created", now - 90 * MINUTE_MS, now, "t1", queue="billing")
    tk(replay, "ticket.created", now - 90 * MINUTE_MS, now, "t2", queue="tech")
    tk(replay, "ticket.created", now - 100 * MINUTE_MS, now, "t3", queue="billing")
    tk(replay, "ticket.agent_replied", now - 30 * MINUTE_MS, now, "t3")  # after 70 min: late for billing
    tk(replay, "ticket.created", now - 100 * MINUTE_MS, now, "t4", queue="tech")
    tk(replay, "ticket.agent_replied", now - 30 * MINUTE_MS, now, "t4")  # after 70 min: in time for tech
    shown = snap(replay, now)
    assert shown["live"]["breaching"]["first_response"] == 1  # t1: past billing's hour
    assert shown["sla_closed"]["first_response"]["n"] == 2
    assert shown["sla_closed"]["first_response"]["value"] == 0.5  # t3 late, t4 in time
    # moves afterwards change neither: t1 to tech, t4 (answered in time for tech) to billing
    tk(replay, "ticket.customer_replied", now - 5 * MINUTE_MS, now, "t1", queue="tech")
    tk(replay, "ticket.customer_replied", now - 5 * MINUTE_MS, now, "t4", queue="billing")
    after = snap(replay, now)
    assert after["live"]["breaching"]["first_response"] == 1
    assert after["sla_closed"]["first_response"]["value"] == 0.5
