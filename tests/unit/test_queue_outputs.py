"""Queue series as users see them: JSON snapshots and alerts name `queue` (no
`channel`) and follow the schemas; Prometheus series carry a `queue` label instead
of `channel`; `/api/v1/scores` gives queue snapshots only when asked."""

from typing import Any

import pytest

from stream_app.core import alerts
from stream_app.core.intake import Intake, Schemas
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.queues import Queues, public, select_snapshots
from stream_app.core.replay import Replay
from stream_app.core.rules import parse_rule
from stream_app.core.timeutil import parse_rfc3339_ms
from stream_app.core.windows import Timeline
from stream_app.metrics import Instruments, parse_samples
from tests.factories import encode, event, survey
from tests.unit.conftest import _SCHEMAS, CHANNELS, WINDOWS

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")
QUEUES = Queues(frozenset({"billing", "tech"}))


def _snapshots() -> list[dict[str, Any]]:
    replay = Replay(Intake(_SCHEMAS, CHANNELS, Timeline(WINDOWS), LifecycleRules(), queues=QUEUES), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 5, NOW - 60_000, "chat", queue="billing")), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 2, NOW - 60_000, "email", queue="billing")), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 1, NOW - 60_000, "chat", queue="vip")), NOW)
    replay.feed(
        "cx.tickets", encode(event("ticket.created", NOW - 90_000, "email", ticket_id="t", queue="tech")), NOW
    )
    return replay.snapshots(NOW)


def test_queue_snapshots_validate_and_name_their_queue() -> None:
    snapshots = _snapshots()
    shown = [public(s) for s in snapshots]
    assert {s.get("queue") for s in shown} == {None, "billing", "other", "tech"}
    for snap in shown:
        assert Schemas().error("metrics", snap) is None
        assert ("queue" in snap) != ("channel" in snap)
    billing = next(s for s in shown if s.get("queue") == "billing" and s["window"] == "15m")
    assert billing["csat"]["value"] == 0.5 and billing["csat"]["n"] == 2  # across chat and email


def test_prometheus_queue_series_carry_queue_not_channel() -> None:
    snapshots = _snapshots()
    samples = parse_samples(Instruments(lambda: snapshots).exposition().decode())
    assert samples['cx_csat_ratio{queue="billing",window="15m"}'] == 0.5
    assert samples['cx_csat_ratio{queue="other",window="15m"}'] == 0.0
    assert samples['cx_csat_ratio{channel="chat",window="15m"}'] == 0.5
    assert samples['cx_open_tickets{queue="tech"}'] == 1.0
    assert not any("queue" in k and "channel" in k for k in samples)


def _view() -> dict[tuple[str, str], tuple[dict[str, Any], int]]:
    return {(s["channel"], s["window"]): (s, 0) for s in _snapshots()}


def test_the_api_gives_queue_snapshots_only_when_asked() -> None:
    view = _view()
    assert {s["channel"] for s in select_snapshots(view, {})} == {"chat", "email", "all"}
    assert {s["channel"] for s in select_snapshots(view, {"queue": "billing", "window": "1h"})} == {
        "queue:billing"
    }
    assert {s["channel"] for s in select_snapshots(view, {"by": "queue"})} == {
        "queue:billing",
        "queue:tech",
        "queue:other",
    }
    with pytest.raises(ValueError, match="not both"):
        select_snapshots(view, {"queue": "billing", "channel": "chat"})
    with pytest.raises(ValueError, match="by must be"):
        select_snapshots(view, {"by": "agent"})


def test_a_queue_alert_names_its_queue_and_validates() -> None:
    rule = parse_rule(
        {"name": "csat_low", "kind": "threshold", "metric": "csat", "window": "15m", "op": "below",
         "threshold": 0.8, "channels": "none", "queues": ["billing"]},
        tuple(sorted(CHANNELS)), 60_000, 3_600_000, ("billing", "tech"),
    )  # fmt: skip
    assert rule.applies_to("queue:billing") and not rule.applies_to("queue:tech")
    assert not rule.applies_to("chat")
    reading = alerts.Reading(alerts.BREACH, 0.5, None, 2)
    message = alerts.alert_message(rule, "queue:billing", "firing", reading, NOW, NOW)
    assert message["queue"] == "billing" and "channel" not in message
    assert "on queue billing" in message["summary"]
    assert Schemas().error("alert", message) is None


def test_board_queue_rows_name_their_queue() -> None:
    """The wallboard feed (`/api/v1/stream?by=queue`): a queue row carries `queue` as
    queue snapshots do elsewhere; channel rows carry none."""
    from stream_app.wallboard import board

    common = {"window": "1h", "windows": ("1h",), "now_ms": NOW, "data_at_ms": NOW, "timezone": "UTC"}
    by_queue = board(_view().values(), [], channels=None, by="queue", queues=["billing"], **common)
    rows = {s["channel"]: s for s in by_queue["scores"]}
    assert set(rows) == {"all", "queue:billing"}
    assert rows["queue:billing"]["queue"] == rows["queue:billing"]["label"] == "billing"
    assert "queue" not in rows["all"]
    by_channel = board(_view().values(), [], channels=None, **common)
    assert all("queue" not in s for s in by_channel["scores"])
