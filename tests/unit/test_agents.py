"""Agent figures (issue 14): whose figure a fact is, worked examples with the
arithmetic written out, the queue filter, and memory that follows active agents."""

from typing import Any

from stream_app.core import agents
from stream_app.core.intake import Intake
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.queues import Queues
from stream_app.core.replay import Replay
from stream_app.core.timeutil import DAY_MS, parse_rfc3339_ms
from stream_app.core.windows import Timeline
from tests.factories import encode, event, survey
from tests.unit.conftest import _SCHEMAS, CHANNELS, WINDOWS, make_intake

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")
MIN = 60_000


def _agents(replay: Replay, window: str = "1h", queue: str | None = None) -> dict[str, dict[str, Any]]:
    replay.snapshots(NOW)  # flush and advance
    views = [(s, w, agg) for s, wins in replay.scoreboard.agent_windows().items() for w, agg in wins.items()]
    return {a["agent_id"]: a for a in agents.table(views, window, queue)}


def _ticket(
    replay: Replay, tid: str, t0: int, *steps: tuple[str, int, dict[str, Any]], queue: str | None = None
) -> None:
    extra = {"queue": queue} if queue else {}
    replay.feed("cx.tickets", encode(event("ticket.created", t0, "email", ticket_id=tid, **extra)), NOW)
    for kind, at, fields in steps:
        replay.feed("cx.tickets", encode(event(kind, at, "email", ticket_id=tid, **{**extra, **fields})), NOW)


def test_worked_example() -> None:
    """a1 first-replies t1 after 2 min and t2 after 6 min (p50 of 120 s and 360 s is one
    of them within 1 %), resolves t1 first-contact; a2 resolves t2 after a second reply
    (not first-contact). CSAT: a1 gets 5 and 2 (1 of 2 satisfied), a2 gets 4.
    Chat c1: a3 joins and answers in 30 s, transfers to a4 who finishes it resolved:
    a3 has the first response, a4 the resolved contact (FCR 0 of 1: transferred)."""
    replay = Replay(make_intake(), NOW)
    t0 = NOW - 30 * MIN
    _ticket(
        replay,
        "t1",
        t0,
        ("ticket.agent_replied", t0 + 2 * MIN, {"agent_id": "a1"}),
        ("ticket.resolved", t0 + 3 * MIN, {"agent_id": "a1"}),
    )
    _ticket(replay, "t2", t0, ("ticket.agent_replied", t0 + 6 * MIN, {"agent_id": "a1"}),
            ("ticket.agent_replied", t0 + 8 * MIN, {"agent_id": "a2"}),
            ("ticket.resolved", t0 + 9 * MIN, {"agent_id": "a2"}))  # fmt: skip
    for score, agent in ((5, "a1"), (2, "a1"), (4, "a2")):
        replay.feed("cx.surveys", encode(survey("csat", score, t0 + 10 * MIN, "email", agent_id=agent)), NOW)
    replay.feed("cx.chats", encode(event("chat.started", t0, "chat", chat_id="c1")), NOW)
    replay.feed(
        "cx.chats", encode(event("chat.agent_joined", t0 + 20_000, "chat", chat_id="c1", agent_id="a3")), NOW
    )
    replay.feed(
        "cx.chats", encode(event("chat.message", t0 + 30_000, "chat", chat_id="c1", sender="agent")), NOW
    )
    replay.feed("cx.chats", encode(event("chat.transferred", t0 + 60_000, "chat", chat_id="c1")), NOW)
    replay.feed(
        "cx.chats", encode(event("chat.agent_joined", t0 + 70_000, "chat", chat_id="c1", agent_id="a4")), NOW
    )
    replay.feed(
        "cx.chats", encode(event("chat.ended", t0 + 5 * MIN, "chat", chat_id="c1", resolved=True)), NOW
    )
    found = _agents(replay)
    assert set(found) == {"a1", "a2", "a3", "a4"}
    a1, a2, a3, a4 = found["a1"], found["a2"], found["a3"], found["a4"]
    assert (a1["csat"]["value"], a1["csat"]["n"]) == (0.5, 2) and a1["csat"]["ci95"] is not None
    assert a1["first_responses"] == 2
    assert a1["first_response_p50_seconds"] is not None
    assert min(abs(a1["first_response_p50_seconds"] - s) / s for s in (120, 360)) <= 0.01
    assert (a1["resolved_contacts"], a1["fcr"]["value"]) == (1, 1.0)
    assert (a2["resolved_contacts"], a2["fcr"]["value"], a2["first_responses"]) == (1, 0.0, 0)
    assert (a2["csat"]["value"], a2["csat"]["n"]) == (1.0, 1)
    # a3 answered the chat (first response 30 s), a4 finished it after the transfer
    assert a3["chat_first_responses"] == 1 and a3["resolved_contacts"] == 0
    assert abs(a3["chat_first_response_p50_seconds"] - 30.0) <= 0.3  # the sketch: within 1 %
    assert a4["chat_first_responses"] == 0
    assert (a4["resolved_contacts"], a4["fcr"]["value"]) == (1, 0.0)  # transferred: not first contact


def test_no_agent_named_no_figure() -> None:
    replay = Replay(make_intake(), NOW)
    t0 = NOW - 30 * MIN
    _ticket(replay, "t1", t0, ("ticket.agent_replied", t0 + MIN, {}),
            ("ticket.agent_replied", t0 + 2 * MIN, {"agent_id": "a9"}),
            ("ticket.resolved", t0 + 3 * MIN, {}))  # fmt: skip
    replay.feed("cx.surveys", encode(survey("csat", 5, t0 + 10 * MIN, "email")), NOW)
    # the first reply named nobody, a9 only replied second; nobody resolved by name
    assert _agents(replay) == {}


def test_the_queue_filter_and_an_agent_across_queues() -> None:
    queues = Queues(frozenset({"billing", "tech"}))
    replay = Replay(Intake(_SCHEMAS, CHANNELS, Timeline(WINDOWS), LifecycleRules(), queues=queues), NOW)
    t0 = NOW - 30 * MIN
    for tid, queue in (("t1", "billing"), ("t2", "tech"), ("t3", "vip")):
        _ticket(replay, tid, t0, ("ticket.agent_replied", t0 + MIN, {"agent_id": "a1"}), queue=queue)
    assert _agents(replay)["a1"]["first_responses"] == 3
    assert _agents(replay, queue="billing")["a1"]["first_responses"] == 1
    assert _agents(replay, queue="other")["a1"]["first_responses"] == 1  # vip is not listed
    assert _agents(replay, queue="billing")["a1"]["queue"] == "billing"


def test_agents_leave_memory_once_their_buckets_age_out() -> None:
    replay = Replay(make_intake(), NOW)
    t0 = NOW - 30 * MIN
    _ticket(replay, "t1", t0, ("ticket.agent_replied", t0 + MIN, {"agent_id": "a1"}))
    replay.snapshots(NOW)
    assert [s for s in replay.scoreboard.channels if agents.is_agent(s)] == ["agent::a1"]
    replay.snapshots(NOW + 2 * DAY_MS)  # past retention
    assert [s for s in replay.scoreboard.channels if agents.is_agent(s)] == []
    assert replay.scoreboard.dropped.get("agent::a1"), "its stored buckets are deleted by the owner"


def test_agent_series_are_never_snapshots_or_rule_targets() -> None:
    from stream_app import config

    replay = Replay(make_intake(), NOW)
    _ticket(replay, "t1", NOW - MIN, ("ticket.agent_replied", NOW - 30_000, {"agent_id": "a1"}))
    assert not any(agents.is_agent(s["channel"]) for s in replay.snapshots(NOW))
    assert not any(rule.applies_to("agent::a1") for rule in config.load({}).alert_rules)


def test_credit_does_not_depend_on_arrival_order() -> None:
    """The chat is a4's (the latest join) and the ticket's first response a1's (the
    earliest reply) whichever order the events arrive in."""
    t0 = NOW - 30 * MIN
    chat = [
        event("chat.started", t0, "chat", chat_id="c1"),
        event("chat.agent_joined", t0 + 20_000, "chat", chat_id="c1", agent_id="a3"),
        event("chat.agent_joined", t0 + 70_000, "chat", chat_id="c1", agent_id="a4"),
        event("chat.ended", t0 + 5 * MIN, "chat", chat_id="c1", resolved=True),
    ]
    ticket = [
        event("ticket.created", t0, "email", ticket_id="t1"),
        event("ticket.agent_replied", t0 + MIN, "email", ticket_id="t1", agent_id="a1"),
        event("ticket.agent_replied", t0 + 2 * MIN, "email", ticket_id="t1", agent_id="a2"),
    ]
    results = []
    for order in (lambda x: x, lambda x: list(reversed(x))):
        replay = Replay(make_intake(), NOW)
        for ev in order(chat):
            replay.feed("cx.chats", encode(ev), NOW)
        for ev in order(ticket):
            replay.feed("cx.tickets", encode(ev), NOW)
        found = _agents(replay)
        results.append(found)
        assert set(found) == {"a1", "a4"}  # no agent message: a3 answered nothing
        assert found["a4"]["resolved_contacts"] == 1
    assert results[0] == results[1]


def test_agent_figures_can_be_turned_off() -> None:
    from stream_app import config

    settings = config.load({"STREAM_APP_AGENT_FIGURES": "off"})
    intake = Intake(
        _SCHEMAS, CHANNELS, Timeline(WINDOWS), LifecycleRules(), agent_figures=settings.agent_figures == "on"
    )
    replay = Replay(intake, NOW)
    _ticket(replay, "t1", NOW - 30 * MIN, ("ticket.agent_replied", NOW - 20 * MIN, {"agent_id": "a1"}))
    assert _agents(replay) == {}
    assert not any(agents.is_agent(s) for s in replay.scoreboard.channels)
