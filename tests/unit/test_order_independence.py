"""Property: any arrival order (and any replay of duplicates) gives exactly the same
scores as in-order processing: with re-rated surveys, ticket/chat events older than
the windows' retention, pending/on-hold periods under business-hours calendars, and
restarts (state reloaded from its encoded form, expiry sweeps) at any point."""

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.core import agents
from stream_app.core.business_hours import parse_schedules
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.replay import Replay
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS, parse_rfc3339_ms
from tests.factories import encode, event, survey
from tests.unit.conftest import make_intake

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")
CHANNELS = ["chat", "email", "phone"]
offsets = st.integers(0, 23 * HOUR_MS)
#: email in office hours (Berlin, lunch break, a holiday), phone overnight, chat 24/7.
SCHEDULES = parse_schedules(
    {
        "calendars": {
            "office": {
                "timezone": "Europe/Berlin",
                "hours": {"mon-fri": ["09:00-12:30", "13:30-18:00"]},
                "holidays": ["2026-11-20", {"date": "2026-11-21", "from": "10:00", "to": "12:00"}],
            },
            "night": {"timezone": "America/New_York", "hours": {"daily": "20:00-04:00"}},
        },
        "assign": {"channels": {"email": "office", "phone": "night"}},
    }
)
RULES = LifecycleRules(schedules=SCHEDULES)
#: Agents named on replies, resolutions, joins and surveys (None: the event names none).
AGENTS = st.sampled_from(["a1", "a2", None])
#: Tickets and chats may start days before the windows: their state still counts (backlog).
history = st.one_of(offsets, st.integers(0, 3 * 24 * HOUR_MS))


@st.composite
def ticket_events(draw: Any, n: int) -> list[tuple[str, dict[str, Any]]]:
    channel = draw(st.sampled_from(CHANNELS))
    tid = f"t{n}"
    start = NOW - draw(history)
    out = [
        (
            "cx.tickets",
            event(
                "ticket.created",
                start,
                channel,
                ticket_id=tid,
                priority=draw(st.sampled_from(["low", "normal", "urgent"])),
            ),
        )
    ]
    for kind in draw(
        st.lists(
            st.sampled_from(
                [
                    "ticket.agent_replied",
                    "ticket.customer_replied",
                    "ticket.resolved",
                    "ticket.reopened",
                    "ticket.status_changed",
                    "ticket.status_changed",
                ]
            ),
            max_size=7,
        )
    ):
        at = min(NOW, start + draw(st.integers(0, 10 * HOUR_MS)))
        extra = (
            {"status": draw(st.sampled_from(["open", "pending", "on_hold"]))}
            if kind.endswith("changed")
            else {}
        )
        if kind in ("ticket.agent_replied", "ticket.resolved") and (agent := draw(AGENTS)):
            extra["agent_id"] = agent
        out.append(("cx.tickets", event(kind, at, channel, ticket_id=tid, **extra)))
    return out


@st.composite
def chat_events(draw: Any, n: int) -> list[tuple[str, dict[str, Any]]]:
    channel = draw(st.sampled_from(CHANNELS))
    cid = f"c{n}"
    start = NOW - draw(history)
    out = [("cx.chats", event("chat.started", start, channel, chat_id=cid))]
    for kind in draw(
        st.lists(
            st.sampled_from(["chat.agent_joined", "chat.message", "chat.transferred", "chat.ended"]),
            max_size=5,
        )
    ):
        at = min(NOW, start + draw(st.integers(0, 30 * MINUTE_MS)))
        extra: dict[str, Any] = {}
        if kind == "chat.message":
            extra["sender"] = draw(st.sampled_from(["customer", "agent", "bot"]))
        if kind == "chat.ended":
            extra["resolved"] = draw(st.booleans())
        if kind == "chat.agent_joined" and (agent := draw(AGENTS)):
            extra["agent_id"] = agent
        out.append(("cx.chats", event(kind, at, channel, chat_id=cid, **extra)))
    return out


@st.composite
def survey_events(draw: Any, n: int) -> list[tuple[str, dict[str, Any]]]:
    """One response, possibly re-rated (several versions, same or different times)."""
    kind = draw(st.sampled_from(["csat", "nps", "ces"]))
    scores = (
        st.integers(1, 5) if kind == "csat" else st.integers(0, 10) if kind == "nps" else st.integers(1, 7)
    )
    channel = draw(st.sampled_from(CHANNELS))
    at = NOW - draw(offsets)
    good_bad = kind == "csat" and draw(st.booleans())  # CSAT scale 2: 1 bad, 2 good
    extra: dict[str, Any] = {"scale": 2} if good_bad else {}
    versions = []
    if draw(st.booleans()):  # the invitation (survey.offered), maybe sent twice
        for _ in range(draw(st.integers(1, 2))):
            offered = event("survey.offered", at - draw(st.integers(0, HOUR_MS)), channel, survey=kind)
            versions.append(("cx.surveys", {**offered, "response_id": f"r{n}"}))
    for _ in range(draw(st.integers(0 if versions else 1, 3))):
        at += draw(st.sampled_from([0, 1, MINUTE_MS]))
        score = draw(st.integers(1, 2)) if good_bad else draw(scores)
        if agent := draw(AGENTS):
            extra = {**extra, "agent_id": agent}
        versions.append(
            ("cx.surveys", survey(kind, score, min(at, NOW), channel, response_id=f"r{n}", **extra))
        )
    return versions


@st.composite
def streams(draw: Any) -> list[tuple[str, dict[str, Any]]]:
    records: list[tuple[str, dict[str, Any]]] = []
    for n in range(draw(st.integers(1, 25))):
        builder = draw(st.sampled_from([ticket_events, chat_events, survey_events]))
        records.extend(draw(builder(n)))
    return records


def run(records: list[tuple[str, dict[str, Any]]], flush_every: int, restarts: frozenset[int]) -> Any:
    replay = Replay(make_intake(rules=RULES), NOW)
    for i, (topic, ev) in enumerate(records):
        replay.feed(topic, encode(ev), NOW)
        if flush_every and i % flush_every == 0:
            replay.flush()
        if i in restarts:  # a restarted worker: state back from its encoded changelog form
            for kind, store in replay.stores.items():
                replay.intake.expire(kind, store, NOW)
                replay.stores[kind] = orjson.loads(orjson.dumps(store))
    snapshots = [snap for snap in replay.snapshots(NOW) if not _empty(snap)]
    views = [(k, w, agg) for k, wins in replay.scoreboard.agent_windows().items() for w, agg in wins.items()]
    return snapshots, [agents.table(views, w, None) for w in ("15m", "1h", "24h", "today")]


def _empty(node: Any) -> bool:
    """A row with nothing in it: a channel whose only contributions cancelled out
    (e.g. a ticket opened and closed days ago) shows the same figures as no row."""
    if isinstance(node, dict):
        return all(_empty(v) for k, v in node.items() if k not in ("channel", "window", "as_of"))
    return node in (None, 0, 0.0) or (isinstance(node, list) and not node)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.data())
def test_shuffled_arrival_with_replays_gives_identical_scores(records: Any, data: Any) -> None:
    in_order = sorted(records, key=lambda r: r[1]["occurred_at"])
    shuffled = data.draw(st.permutations(records))
    replays = data.draw(st.lists(st.sampled_from(records), max_size=5)) if records else []
    flush_every = data.draw(st.integers(0, 7))
    restarts = frozenset(data.draw(st.lists(st.integers(0, max(0, len(records) - 1)), max_size=3)))
    assert run(list(shuffled) + replays, flush_every, restarts) == run(in_order, 0, frozenset())
