"""Tickets that live for days, missing history, clock skew, re-rated surveys and
bounded state (issue 11, SPEC §3/§4): each failing input of the issue, with the
SPEC's value."""

from typing import Any

import orjson

from stream_app.core.aggregate import LIVE_KINDS
from stream_app.core.intake import DUPLICATE, Accepted, Intake, Rejected
from stream_app.core.lifecycle import apply_chat_event, became_incomplete, chat_facts
from stream_app.core.replay import Replay
from stream_app.core.store import encode as encode_state
from stream_app.core.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, parse_rfc3339_ms
from tests.factories import encode, event, survey
from tests.unit.conftest import make_intake

T = parse_rfc3339_ms("2026-11-20T09:00:00Z")
RULES_NOW = T + 30 * MINUTE_MS
#: Something on the email channel, so its snapshot exists and shows what is left out.
SURVEY_ON_EMAIL = ("cx.surveys", survey("csat", 5, T, "email"))


def snapshot(replay: Replay, now: int, channel: str = "email", window: str = "24h") -> dict[str, Any]:
    for snap in replay.snapshots(now):
        if snap["channel"] == channel and snap["window"] == window:
            return snap
    raise AssertionError(f"no snapshot for {channel}/{window}")


def feed(replay: Replay, events: list[tuple[str, dict[str, Any]]], now: int) -> list[Any]:
    outcomes = []
    kind = {"cx.tickets": "ticket", "cx.chats": "chat", "cx.surveys": "survey"}
    for topic, ev in events:
        outcomes.append(replay.intake.process(topic, encode(ev), now, replay.stores[kind[topic]]))
        if isinstance(outcomes[-1], Accepted):
            replay.partials.add(outcomes[-1].delta, outcomes[-1].queue)
    return outcomes


def tk(kind: str, at: int, tid: str = "t1", **extra: Any) -> tuple[str, dict[str, Any]]:
    return ("cx.tickets", event(kind, at, "email", ticket_id=tid, **extra))


# --- 1. missing history is never credited -------------------------------------------


def test_a_lone_resolution_is_left_out_of_fcr_times_and_sla_and_counted_incomplete() -> None:
    replay = Replay(make_intake(), RULES_NOW)
    outcome, _ = feed(replay, [tk("ticket.resolved", T), SURVEY_ON_EMAIL], RULES_NOW)
    assert isinstance(outcome, Accepted)
    assert became_incomplete("ticket", None, replay.stores["ticket"]["t1"])
    snap = snapshot(replay, RULES_NOW)
    assert snap["fcr"]["n"] == 0 and snap["fcr"]["value"] is None
    assert snap["resolution_seconds"]["n"] == 0
    assert snap["first_response_seconds"]["n"] == 0
    assert snap["sla"]["resolution"]["n"] == 0 and snap["sla"]["first_response"]["n"] == 0
    assert snap["open_tickets"] == 0


def test_a_creation_arriving_after_the_resolution_brings_the_ticket_back_into_the_figures() -> None:
    replay = Replay(make_intake(), RULES_NOW)
    feed(replay, [tk("ticket.resolved", T + MINUTE_MS), tk("ticket.created", T)], RULES_NOW)
    # judged over the batch: a start in the same batch as the closure is no sighting
    assert not became_incomplete("ticket", None, replay.stores["ticket"]["t1"])
    snap = snapshot(replay, RULES_NOW)
    assert snap["fcr"]["n"] == 1 and snap["resolution_seconds"]["n"] == 1


def test_a_lone_chat_end_gives_no_abandonment_and_is_counted_incomplete() -> None:
    replay = Replay(make_intake(), RULES_NOW)
    ended = ("cx.chats", event("chat.ended", T, "chat", chat_id="c1"))
    outcome, _ = feed(replay, [ended, ("cx.surveys", survey("csat", 5, T, "chat"))], RULES_NOW)
    assert isinstance(outcome, Accepted)
    assert became_incomplete("chat", None, replay.stores["chat"]["c1"])
    snap = snapshot(replay, RULES_NOW, "chat")
    assert snap["abandoned"]["n"] == 0 and snap["fcr"]["n"] == 0


# --- 2. a ticket reopened days later is counted once -------------------------------------


def _reopened_after(gap_ms: int, intake: Intake | None = None) -> tuple[Replay, int]:
    """Created, one reply, resolved at T; reopened at T+gap, replied, resolved again;
    each event processed at its own time, with the state expiry sweeps of the worker."""
    replay = Replay(intake or make_intake(), T)
    steps = [
        tk("ticket.created", T - HOUR_MS),
        tk("ticket.agent_replied", T - 30 * MINUTE_MS),
        tk("ticket.resolved", T),
        tk("ticket.reopened", T + gap_ms),
        tk("ticket.agent_replied", T + gap_ms + 10 * MINUTE_MS),
        tk("ticket.resolved", T + gap_ms + HOUR_MS),
    ]
    for topic, ev in steps:
        now = parse_rfc3339_ms(ev["occurred_at"]) + 1000
        replay.intake.expire("ticket", replay.stores["ticket"], now)
        feed(replay, [(topic, ev)], now)
        replay.snapshots(now)  # the scoreboard moves on with the clock
    return replay, T + gap_ms + HOUR_MS + 1000


def test_a_reopen_two_days_later_does_not_count_the_ticket_again() -> None:
    replay, now = _reopened_after(2 * DAY_MS)
    assert replay.stores["ticket"]  # closed state is remembered across the 2 days
    for window in ("15m", "1h", "24h"):
        assert snapshot(replay, now, window=window)["fcr"]["n"] == 0, window  # T is out of every window
    assert snapshot(replay, now)["open_tickets"] == 0


def test_a_reopen_inside_the_held_window_revokes_the_credit() -> None:
    replay, now = _reopened_after(3 * HOUR_MS)
    fcr = snapshot(replay, now)["fcr"]
    assert (fcr["n"], fcr["value"]) == (1, 0.0)


def test_a_ticket_resolved_again_after_its_state_was_forgotten_is_never_counted_twice() -> None:
    replay, now = _reopened_after(8 * DAY_MS)  # past the 7-day reopen window: state dropped
    snap = snapshot(replay, now)
    assert snap["fcr"]["n"] == 0 and snap["resolution_seconds"]["n"] == 0
    assert snap["open_tickets"] == 0


# --- 3. history older than the windows still builds state --------------------------------


def test_a_ticket_created_two_days_ago_and_still_open_is_in_the_backlog() -> None:
    now = T + 2 * DAY_MS
    replay = Replay(make_intake(), now)
    outcomes = feed(replay, [tk("ticket.created", T), tk("ticket.agent_replied", T + HOUR_MS)], now)
    assert all(isinstance(o, Accepted) for o in outcomes)
    assert all(not o.delta or all(f[2] in LIVE_KINDS for f, _ in o.delta) for o in outcomes)
    snap = snapshot(replay, now)
    assert snap["open_tickets"] == 1
    assert snap["volume"]["tickets"] == 0 and snap["first_response_seconds"]["n"] == 0


def test_an_old_resolution_still_closes_the_ticket_and_an_old_survey_is_too_late() -> None:
    now = T + 3 * DAY_MS
    replay = Replay(make_intake(), now)
    feed(replay, [tk("ticket.created", T), tk("ticket.resolved", T + DAY_MS)], now)
    feed(replay, [("cx.surveys", survey("csat", 5, now, "email"))], now)
    assert snapshot(replay, now)["open_tickets"] == 0
    old = replay.intake.process("cx.surveys", encode(survey("csat", 5, T)), now, {})
    assert isinstance(old, Rejected) and old.reason == "too_late"


def test_a_late_first_reply_to_a_ticket_still_in_the_window_counts() -> None:
    now = T + 2 * DAY_MS
    replay = Replay(make_intake(), now)
    feed(replay, [tk("ticket.created", now - HOUR_MS), tk("ticket.agent_replied", now - 50 * MINUTE_MS)], now)
    assert snapshot(replay, now)["first_response_seconds"]["n"] == 1


# --- 4. clock skew between systems ---------------------------------------------------------


def test_clock_skew_creation_stamped_after_reply_and_resolution_leaves_the_ticket_closed() -> None:
    replay = Replay(make_intake(), RULES_NOW)
    feed(
        replay,
        [
            tk("ticket.created", T + 3000),
            tk("ticket.agent_replied", T + 1000),
            tk("ticket.resolved", T + 2000),
        ],
        RULES_NOW,
    )
    snap = snapshot(replay, RULES_NOW)
    assert snap["open_tickets"] == 0
    assert (snap["fcr"]["n"], snap["fcr"]["value"]) == (1, 1.0)
    assert snap["resolution_seconds"]["p50"] == 0.0
    assert not replay.intake.expire("ticket", replay.stores["ticket"], T + 8 * DAY_MS)[2]


# --- 6. re-rated surveys ------------------------------------------------------------------


def test_the_latest_version_of_a_re_rated_response_counts_whatever_the_arrival_order() -> None:
    first = survey("csat", 1, T, "email", response_id="r1")
    rerated = survey("csat", 5, T + 5 * MINUTE_MS, "email", response_id="r1")
    for order in ([first, rerated], [rerated, first]):
        replay = Replay(make_intake(), RULES_NOW)
        feed(replay, [("cx.surveys", s) for s in order], RULES_NOW)
        csat = snapshot(replay, RULES_NOW)["csat"]
        assert (csat["n"], csat["value"]) == (1, 1.0), order


def test_a_re_rating_with_the_same_time_is_decided_by_the_greatest_event_id() -> None:
    low = survey("csat", 1, T, "email", response_id="r1", event_id="a")
    high = survey("csat", 5, T, "email", response_id="r1", event_id="b")
    for order in ([low, high], [high, low]):
        replay = Replay(make_intake(), RULES_NOW)
        outcomes = feed(replay, [("cx.surveys", s) for s in [*order, order[0]]], RULES_NOW)
        assert outcomes[-1] == DUPLICATE
        assert snapshot(replay, RULES_NOW)["csat"]["value"] == 1.0


# --- 7. state size does not grow with the number of events ---------------------------------


def test_a_chat_with_30000_messages_keeps_a_small_state_and_replays_change_nothing() -> None:
    state: dict[str, Any] = {}
    first = event("chat.started", T, "chat", chat_id="c1")
    apply_chat_event(state, first, T)
    apply_chat_event(state, event("chat.agent_joined", T + 5000, "chat", chat_id="c1"), T + 5000)
    messages = [
        event("chat.message", T + 10_000 + i, "chat", chat_id="c1", sender="customer" if i % 3 else "agent")
        for i in range(30_000)
    ]
    sizes = []
    for i, message in enumerate(messages):
        apply_chat_event(state, message, T + 10_000 + i)
        if i in (19, 29_999):
            sizes.append(len(encode_state(state)))
    assert max(sizes) < 300 and abs(sizes[0] - sizes[1]) <= 4  # hashes differ in digits only
    before = orjson.dumps(state)
    facts = chat_facts(state, make_intake().rules)
    for message in (first, messages[0], messages[-1]):  # an old replay and a recent one
        apply_chat_event(state, message, parse_rfc3339_ms(message["occurred_at"]))
    assert chat_facts(state, make_intake().rules) == facts
    assert orjson.loads(before)["am"] == state["am"]
