"""Snapshots follow schemas/metrics.v1.json; Prometheus shows only windows with samples."""

from typing import Any

from prometheus_client import generate_latest

from stream_app.core.intake import Schemas
from stream_app.core.replay import Replay
from stream_app.core.scoreboard import ChannelPartial, Partials
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
    assert chat_15m["first_response_seconds"] == {"p50": None, "p90": None, "mean": None, "n": 0}


def test_prometheus_series_absent_when_window_is_empty() -> None:
    snapshots = sample_snapshots()
    text = generate_latest(Instruments(lambda: snapshots).registry).decode()
    assert 'cx_csat_ratio{channel="chat",window="15m"} 1.0' in text
    assert 'cx_nps_score{channel="chat",window="1h"} -100.0' in text
    assert 'cx_nps_score{channel="chat",window="15m"}' not in text  # the detractor is 20 min old
    assert 'cx_first_response_seconds{channel="email",quantile="0.5",window="15m"}' in text
    assert 'cx_open_tickets{channel="email"} 1.0' in text
    assert 'cx_fcr_ratio{channel="email"' not in text
    for line in text.splitlines():
        assert "ticket_id" not in line and "response_id" not in line  # bounded labels only


def test_partials_round_trip_through_json() -> None:
    partials = Partials(make_intake().timeline)
    partials.add([(("chat", NOW, "first_response", 61_000, 1), 1), (("chat", 0, "open", 0, 0), 1)])
    drained = partials.drain()
    assert set(drained) == {"chat", "all"}
    again = ChannelPartial.from_json(drained["chat"].to_json())
    assert again.open_delta == 1
    assert again.buckets == drained["chat"].buckets


def test_scoreboard_remembers_buckets_dropped_by_retention() -> None:
    from stream_app.core.scoreboard import Scoreboard

    timeline = make_intake().timeline
    board = Scoreboard(timeline, NOW)
    partials = Partials(timeline)
    partials.add([(("chat", NOW, "chat_started", 0, 0), 1)])
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
