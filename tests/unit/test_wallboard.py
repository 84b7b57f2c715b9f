"""What the wallboard is pushed: the chosen window's rows, firing alerts, staleness."""

from typing import Any

import pytest

from stream_app import config
from stream_app.config import ConfigError
from stream_app.core.timeutil import format_ms
from stream_app.wallboard import BOARD_STALE_AFTER_MS, Alerts, board, sse_event, static_file

NOW = 1_795_000_000_000


def snap(channel: str, window: str) -> dict[str, Any]:
    return {"channel": channel, "window": window, "as_of": format_ms(NOW)}


def alert(rule: str, channel: str, state: str, severity: str = "critical", at: str = "1") -> dict[str, Any]:
    return {
        "rule": rule,
        "channel": channel,
        "window": "1h",
        "state": state,
        "severity": severity,
        "started_at": at,
    }


def push(**overrides: Any) -> dict[str, Any]:
    rows = [(snap(c, w), NOW - 1000) for c in ("chat", "all", "email") for w in ("15m", "1h")]
    args: dict[str, Any] = {
        "window": "1h",
        "windows": ("15m", "1h"),
        "channels": None,
        "now_ms": NOW,
        "data_at_ms": NOW - 1000,
        "timezone": "UTC",
    }
    args.update(overrides)
    return board(rows, overrides.pop("firing", []), **args)


def test_rows_are_the_chosen_window_rollup_first() -> None:
    pushed = push()
    assert [(s["channel"], s["window"]) for s in pushed["scores"]] == [
        ("all", "1h"),
        ("chat", "1h"),
        ("email", "1h"),
    ]
    assert all(s["updated_ms"] == NOW - 1000 for s in pushed["scores"])
    assert pushed["windows"] == ["15m", "1h"]


def test_channel_filter_applies_to_rows_and_alerts() -> None:
    firing = [alert("csat_drop", "chat", "firing"), alert("csat_drop", "email", "firing")]
    pushed = board(
        [(snap("chat", "1h"), NOW), (snap("email", "1h"), NOW)],
        firing,
        window="1h",
        windows=("1h",),
        channels=["chat"],
        now_ms=NOW,
        data_at_ms=NOW,
        timezone="UTC",
    )
    assert [s["channel"] for s in pushed["scores"]] == ["chat"]
    assert [a["channel"] for a in pushed["alerts"]] == ["chat"]


def test_board_is_stale_only_when_data_stopped_arriving() -> None:
    assert push()["stale_since_ms"] is None
    assert push(data_at_ms=NOW - BOARD_STALE_AFTER_MS)["stale_since_ms"] is None
    late = NOW - BOARD_STALE_AFTER_MS - 1
    assert push(data_at_ms=late)["stale_since_ms"] == late


def test_alerts_keep_the_latest_state_per_series_critical_first() -> None:
    alerts = Alerts()
    alerts.record(alert("csat_drop", "chat", "firing", at="2"))
    alerts.record(alert("csat_low", "email", "firing", severity="warning", at="1"))
    alerts.record(alert("nps_drop", "sms", "firing", at="3"))
    alerts.record(alert("nps_drop", "sms", "resolved", at="3"))
    assert [(a["rule"], a["channel"]) for a in alerts.firing()] == [
        ("csat_drop", "chat"),
        ("csat_low", "email"),
    ]


def test_sse_event_framing() -> None:
    assert sse_event("board", b'{"a":1}') == b'event: board\ndata: {"a":1}\n\n'


def test_page_assets_are_packaged() -> None:
    page = static_file("wallboard.html").decode()
    assert "/wallboard/wallboard.js" in page and "/wallboard/wallboard.css" in page
    assert b"EventSource" in static_file("wallboard.js")


def test_the_board_carries_the_minimum_sample_the_page_dims_below() -> None:
    assert push()["min_sample"] == 30  # SPEC-facing default
    assert push(min_sample=50)["min_sample"] == 50
    assert config.load({"STREAM_APP_MIN_SAMPLE": "12"}).min_sample == 12
    with pytest.raises(ConfigError, match=r"^STREAM_APP_MIN_SAMPLE"):
        config.load({"STREAM_APP_MIN_SAMPLE": "0"})
