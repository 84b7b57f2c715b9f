"""Snapshots follow schemas/metrics.v1.json; Prometheus shows only windows with samples."""

from typing import Any

from stream_app.core.aggregate import Aggregate
from stream_app.core.intake import Schemas
from stream_app.core.measures import measure
from stream_app.core.partial_codec import decode_partial, encode_partial
from stream_app.core.replay import Replay
from stream_app.core.scoreboard import Partials
from stream_app.core.timeutil import parse_rfc3339_ms
from stream_app.metrics import Instruments
from tests.factories import encode, event, survey
from tests.unit.conftest import make_intake

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")


def sample_snapshots() -> list[dict[str, Any]]:
    replay = Replay(make_intake(), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 5, NOW - 60_000, "chat")), NOW)
    replay.feed("cx.surveys", encode(survey("nps", 3, NOW - 20 * 60_000, "chat")), NOW)
    replay.feed("cx.tickets", encode(event("ticket.created", NOW - 90_000, "email", ticket_id="t")), NOW)
    replay.feed(
        "cx.tickets", encode(event("ticket.agent_replied", NOW - 30_000, "email", ticket_id="t")), NOW
    )
    return replay.snapshots(NOW)


def test_snapshots_validate_against_the_schema() -> None:
    schemas = Schemas()
    snapshots = sample_snapshots()
    assert {s["channel"] for s in snapshots} == {"chat", "email", "all"}
    for snap in snapshots:
        assert schemas.error("metrics", snap) is None


def test_empty_window_values_are_null() -> None:
    chat_15m = next(s for s in sample_snapshots() if s["channel"] == "chat" and s["window"] == "15m")
    assert chat_15m["csat"]["value"] == 1.0
    assert chat_15m["nps"] == {"value": None, "n": 0, "ci95": None, "promoters": 0, "detractors": 0}
    assert chat_15m["first_response_seconds"] == {"p50": None, "p90": None, "mean": None, "n": 0, "sum": 0.0}


def test_prometheus_series_absent_when_window_is_empty() -> None:
    snapshots = sample_snapshots()
    text = Instruments(lambda: snapshots).exposition().decode()
    assert 'cx_csat_ratio{channel="chat",window="15m"} 1.0' in text
    assert 'cx_nps_score{channel="chat",window="1h"} -100.0' in text
    assert 'cx_nps_score{channel="chat",window="15m"}' not in text  # the detractor is 20 min old
    assert (
        'cx_first_response_seconds{channel="email",clock="calendar",kind="ticket",quantile="0.5",window="15m"}'
        in text
    )
    assert (
        'cx_first_response_seconds_count{channel="email",clock="calendar",kind="ticket",window="15m"} 1.0'
        in text
    )
    assert (
        'cx_first_response_seconds_sum{channel="email",clock="calendar",kind="ticket",window="15m"} 60.0'
        in text
    )
    assert 'cx_first_response_seconds{channel="chat"' not in text  # no first response there
    assert 'cx_open_tickets{channel="email"} 1.0' in text
    assert 'cx_fcr_ratio{channel="email"' not in text
    for line in text.splitlines():
        assert "ticket_id" not in line and "response_id" not in line  # bounded labels only


def test_partials_round_trip_through_json() -> None:
    partials = Partials(make_intake().timeline)
    partials.add([(("chat", NOW, "first_response", 61_000, 1), 1), (("chat", 0, "open", 0, 0), 1)], "")
    drained = partials.drain()
    assert set(drained) == {"chat", "all"}
    again = decode_partial(encode_partial(drained["chat"]))
    assert again.live == {"open": {0: 1}}
    assert again.buckets == drained["chat"].buckets


def test_scoreboard_remembers_buckets_dropped_by_retention() -> None:
    from stream_app.core.scoreboard import Scoreboard

    timeline = make_intake().timeline
    board = Scoreboard(timeline, NOW)
    partials = Partials(timeline)
    partials.add([(("chat", NOW, "chat_started", 0, 0), 1)], "")
    board.apply("chat", partials.drain()["chat"])
    board.advance(NOW + 60_000)  # a scrape or a snapshot tick: nothing expires yet
    assert board.take_dropped("chat") == []
    board.advance(NOW + 26 * 3_600_000)
    assert board.take_dropped("chat") == [timeline.bucket_of(NOW)]
    assert board.take_dropped("chat") == []


def test_only_reported_windows_are_published() -> None:
    """Rules may track extra windows (a 2m alert window); snapshots keep to STREAM_APP_WINDOWS."""
    from stream_app import config
    from stream_app.core.intake import Intake

    settings = config.load({})
    intake = Intake(Schemas(), frozenset(settings.channels), settings.timeline(), settings.lifecycle_rules())
    replay = Replay(intake, NOW, settings.alert_rules, settings.windows)
    replay.feed("cx.surveys", encode(survey("csat", 5, NOW - 60_000, "chat")), NOW)
    assert "2m" in {w.name for w in settings.timeline().windows}
    assert {s["window"] for s in replay.snapshots(NOW)} == {"15m", "1h", "24h", "today"}


def test_ratios_are_exposed_at_full_precision() -> None:
    """FCR 6 of 9 is 0.666…, not 0.6667: rounding is for displays (SPEC §6)."""
    replay = Replay(make_intake(), NOW)
    for i in range(9):
        tid = f"fcr-{i}"
        at = NOW - 5 * 60_000 + i * 1000
        replay.feed("cx.tickets", encode(event("ticket.created", at, "email", ticket_id=tid)), NOW)
        replies = 1 if i < 6 else 2  # three need a second reply: not first-contact
        for r in range(replies):
            reply = event("ticket.agent_replied", at + 1000 + r, "email", ticket_id=tid)
            replay.feed("cx.tickets", encode(reply), NOW)
        replay.feed("cx.tickets", encode(event("ticket.resolved", at + 2000, "email", ticket_id=tid)), NOW)
    snapshots = replay.snapshots(NOW)
    email = next(s for s in snapshots if s["channel"] == "email" and s["window"] == "15m")
    assert email["fcr"]["value"] == 6 / 9
    text = Instruments(lambda: snapshots).exposition().decode()
    assert f'cx_fcr_ratio{{channel="email",window="15m"}} {6 / 9!r}' in text


def test_percentile_families_are_summaries_and_counters_have_no_created_series() -> None:
    snapshots = sample_snapshots()
    instruments = Instruments(lambda: snapshots, topics=["cx.tickets"])
    instruments.events.labels("cx.tickets", "accepted").inc()
    text = instruments.exposition().decode()
    for family in ("cx_first_response_seconds", "cx_resolution_seconds", "cx_chat_wait_seconds"):
        assert f"# TYPE {family} summary" in text
    assert "_created" not in text


def test_ces_mean_is_on_the_7_point_scale_with_5_point_answers_rescaled() -> None:
    """SPEC §4: a 7 of 7 and a 5 of 5 are both the top of the scale: mean 7, not 6."""
    replay = Replay(make_intake(), NOW)
    replay.feed("cx.surveys", encode(survey("ces", 7, NOW - 60_000, "chat", scale=7)), NOW)
    replay.feed("cx.surveys", encode(survey("ces", 5, NOW - 60_000, "chat", scale=5)), NOW)
    replay.feed("cx.surveys", encode(survey("ces", 3, NOW - 60_000, "email", scale=5)), NOW)  # → 4
    replay.feed("cx.surveys", encode(survey("ces", 1, NOW - 60_000, "email", scale=5)), NOW)  # → 1
    replay.feed("cx.surveys", encode(survey("ces", 2, NOW - 60_000, "email", scale=7)), NOW)
    by_channel = {s["channel"]: s for s in replay.snapshots(NOW) if s["window"] == "15m"}
    assert by_channel["chat"]["ces"]["mean"] == 7.0
    assert by_channel["email"]["ces"]["mean"] == (4 + 1 + 2) / 3
    assert by_channel["all"]["ces"]["mean"] == (7 + 7 + 4 + 1 + 2) / 5


def test_the_ces_mean_alert_metric_uses_the_same_7_point_scale() -> None:
    agg = Aggregate()
    for score, scale in ((7, 7), (5, 5), (3, 5), (2, 7)):
        agg.add_fact(("chat", NOW, "ces", score, scale), 1)
    found = measure("ces_mean", agg)
    assert found.value == (7 + 7 + 4 + 2) / 4
    values = [7, 7, 4, 2]
    mean = sum(values) / 4
    assert found.variance is not None
    assert abs(found.variance - sum((v - mean) ** 2 for v in values) / 4) < 1e-12


def test_a_chat_the_bot_resolved_is_contained_not_abandoned_nor_an_fcr() -> None:
    """SPEC §4: ended `resolved: true` with no agent is self-service containment."""
    replay = Replay(make_intake(), NOW)
    at = NOW - 5 * 60_000

    def chat(cid: str, *steps: tuple[str, int, dict[str, Any]]) -> None:
        for kind, offset, fields in steps:
            replay.feed("cx.chats", encode(event(kind, at + offset, "chat", chat_id=cid, **fields)), NOW)

    chat(
        "bot",
        ("chat.started", 0, {}),
        ("chat.message", 1000, {"sender": "customer"}),
        ("chat.message", 2000, {"sender": "bot"}),
        ("chat.ended", 3000, {"resolved": True}),
        # an agent who joins and writes after the end answered nobody
        ("chat.agent_joined", 50_000, {}),
        ("chat.message", 60_000, {"sender": "agent"}),
    )
    chat("left", ("chat.started", 0, {}), ("chat.ended", 9000, {"resolved": False}))
    chat(
        "agent",
        ("chat.started", 0, {}),
        ("chat.agent_joined", 5000, {}),
        ("chat.message", 6000, {"sender": "agent"}),
        ("chat.ended", 60_000, {"resolved": True}),
    )
    snap = next(s for s in replay.snapshots(NOW) if s["channel"] == "chat" and s["window"] == "15m")
    assert snap["abandoned"]["value"] == 1 / 3 and snap["abandoned"]["n"] == 3  # only "left"
    assert snap["contained"]["value"] == 1 / 3 and snap["contained"]["n"] == 3  # only "bot"
    assert snap["fcr"] == {**snap["fcr"], "value": 1.0, "n": 1}  # only the agent's chat
    assert snap["chat_first_response_seconds"]["n"] == 1  # the agent chat's, not the bot chat's
    assert snap["chat_wait_seconds"]["n"] == 1
    text = Instruments(lambda: [snap]).exposition().decode()
    assert f'cx_contained_ratio{{channel="chat",window="15m"}} {1 / 3!r}' in text
    assert 'cx_chats_ended{channel="chat",window="15m"} 3.0' in text  # the n of both shares


def test_first_response_is_reported_per_kind_with_a_chat_target_in_seconds() -> None:
    """SPEC §4/§5: tickets (hours) and chats (seconds) never share a percentile or a
    target; under it_services a chat answered after 5 minutes misses its 60 s target
    (it met the tickets' 2 hours before)."""
    replay = Replay(make_intake(), NOW)
    at = NOW - 10 * 60_000
    for i, wait_ms in enumerate((30_000, 45_000, 300_000)):
        cid = f"c{i}"
        replay.feed("cx.chats", encode(event("chat.started", at, "chat", chat_id=cid)), NOW)
        message = event("chat.message", at + wait_ms, "chat", chat_id=cid, sender="agent")
        replay.feed("cx.chats", encode(message), NOW)
    replay.feed("cx.tickets", encode(event("ticket.created", at - 3_600_000, "chat", ticket_id="t")), NOW)
    reply = event("ticket.agent_replied", at, "chat", ticket_id="t")
    replay.feed("cx.tickets", encode(reply), NOW)
    snapshots = replay.snapshots(NOW)
    snap = next(s for s in snapshots if s["channel"] == "chat" and s["window"] == "15m")
    assert snap["chat_first_response_seconds"]["n"] == 3
    assert snap["chat_first_response_seconds"]["mean"] == (30 + 45 + 300) / 3
    assert snap["first_response_seconds"]["n"] == 1 and snap["first_response_seconds"]["mean"] == 3600.0
    assert snap["sla"]["chat_first_response"]["value"] == 2 / 3
    assert snap["sla"]["first_response"]["value"] == 1.0  # 1 h < 2 h
    text = Instruments(lambda: snapshots).exposition().decode()
    assert (
        'cx_first_response_seconds_count{channel="chat",clock="calendar",kind="chat",window="15m"} 3.0'
        in text
    )
    assert (
        'cx_first_response_seconds_count{channel="chat",clock="calendar",kind="ticket",window="15m"} 1.0'
        in text
    )
    chat_sla = 'cx_sla_attainment_ratio{channel="chat",kind="chat",target="first_response",window="15m"}'
    assert f"{chat_sla} {2 / 3!r}" in text
    assert (
        'cx_sla_attainment_ratio{channel="chat",kind="ticket",target="first_response",window="15m"} 1.0'
        in text
    )
    # each share's n beside it: 3 chats and 1 ticket judged against their targets
    assert 'cx_sla_contacts{channel="chat",kind="chat",target="first_response",window="15m"} 3.0' in text
    assert 'cx_sla_contacts{channel="chat",kind="ticket",target="first_response",window="15m"} 1.0' in text
    assert 'cx_sla_contacts{channel="chat",kind="ticket",target="resolution"' not in text  # none resolved
