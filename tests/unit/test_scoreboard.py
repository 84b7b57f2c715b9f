"""Which windows a series keeps (`Scoreboard.windows_of`): the reported ones plus
those of the alert rules that watch it. A queue series no rule selects, and every
agent series, keep no 2-minute window; what they report is unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stream_app.config import load
from stream_app.core.intake import Accepted
from stream_app.core.scoreboard import Partials, Scoreboard
from tests.factories import encode, event

NOW = 1_800_000_000_000
MINUTE = 60_000


def test_queue_and_agent_series_keep_only_the_windows_they_report_or_a_rule_reads(tmp_path: Path) -> None:
    settings = load({"STREAM_APP_STORE": "memory://", "STREAM_APP_QUEUES": "billing"})
    timeline, reported = settings.timeline(), set(settings.windows)
    assert "2m" in {w.name for w in timeline.windows}, "the default csat_drop rule reads 2m"
    board = Scoreboard(timeline, NOW, settings.windows, settings.alert_rules)
    assert set(board.channel("email").windows) == reported | {"2m"}
    assert set(board.channel("all").windows) >= reported
    assert set(board.channel("queue:billing").windows) == reported
    assert set(board.channel("agent:billing:a1").windows) == reported
    assert set(Scoreboard(timeline, NOW, settings.windows).channel("queue:billing").windows) == reported | {
        "2m"
    }

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: q, kind: threshold, metric: csat, window: 5m, threshold: 0.5, op: below,"
        " queues: [billing], channels: none}\n"
    )
    watching = load(
        {"STREAM_APP_STORE": "memory://", "STREAM_APP_QUEUES": "billing", "STREAM_APP_RULES": str(rules)}
    )
    board = Scoreboard(watching.timeline(), NOW, watching.windows, watching.alert_rules)
    assert set(board.channel("queue:billing").windows) == reported | {"5m"}
    assert set(board.channel("queue:other").windows) == reported
    assert set(board.channel("email").windows) == reported


def test_fewer_windows_report_the_same_figures() -> None:
    settings = load(
        {
            "STREAM_APP_STORE": "memory://",
            "STREAM_APP_QUEUES": "billing,tech",
            "STREAM_APP_AGENT_FIGURES": "on",
        }
    )
    intake = settings.intake()
    timeline = intake.timeline
    stores: dict[str, dict[str, Any]] = {"cx.tickets": {}, "cx.surveys": {}}
    partials = Partials(timeline)
    for i in range(120):
        at = NOW - (i * 7 % 180) * MINUTE
        named = ("billing", "tech", "sales", None)[i % 4]
        queue = {"queue": named} if named else {}
        events = [
            (
                "cx.tickets",
                event("ticket.created", at, "email", ticket_id=f"t{i}", **queue, agent_id=f"a{i % 3}"),
            ),
            (
                "cx.tickets",
                event(
                    "ticket.agent_replied", at + 5 * MINUTE, "email", ticket_id=f"t{i}", agent_id=f"a{i % 3}"
                ),
            ),
            (
                "cx.surveys",
                event(
                    "survey.submitted",
                    at,
                    "chat",
                    response_id=f"r{i}",
                    survey="csat",
                    score=1 + i % 5,
                    **queue,
                ),
            ),
        ]
        for topic, ev in events:
            outcome = intake.process(topic, encode(ev), NOW, stores[topic])
            assert isinstance(outcome, Accepted), outcome
            partials.add(outcome.delta, outcome.queue)
    drained = partials.drain()
    assert any(s.startswith("queue:") for s in drained) and any(s.startswith("agent:") for s in drained)
    full = Scoreboard(timeline, NOW - 30 * MINUTE, settings.windows)
    kept = Scoreboard(timeline, NOW - 30 * MINUTE, settings.windows, settings.alert_rules)
    for board in (full, kept):
        for series, partial in drained.items():
            board.apply(series, partial)
        board.advance(NOW)
    assert kept.snapshots(exact=True) == full.snapshots(exact=True)
    assert kept.agent_windows().keys() == full.agent_windows().keys()
    for series, windows in kept.agent_windows().items():
        assert windows == {name: agg for name, agg in full.agent_windows()[series].items() if name in windows}
    assert kept.views("email") == full.views("email"), "the rules' windows of a watched series"
