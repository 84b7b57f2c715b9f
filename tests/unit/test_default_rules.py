"""The shipped default rules on the pure core: a drop first seen late, or spread over
an hour, still alerts within a minute of being seen; steady traffic raises nothing.

Each scenario feeds a day of history, then the minutes that matter, through `Replay`
(the same intake, windows and alert code as the workers) with the default rules.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from stream_app import config
from stream_app.core.intake import Intake, Schemas
from stream_app.core.replay import Replay
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS, parse_rfc3339_ms
from tests.factories import encode, survey

NOW = parse_rfc3339_ms("2026-11-24T15:00:00Z")
EVERY_MS = 6_000  # one CSAT answer per 6 s on the channel: 600 an hour
CHANNEL = "chat"


def replay() -> Replay:
    settings = config.load({})
    intake = Intake(Schemas(), frozenset(settings.channels), settings.timeline(), settings.lifecycle_rules())
    return Replay(intake, NOW - 24 * HOUR_MS, settings.alert_rules, settings.windows)


def answers(rng: random.Random, since: int, until: int, p: Any) -> list[bytes]:
    """One CSAT answer every EVERY_MS in [since, until); satisfied with probability p(t)."""
    out = []
    for t in range(since, until, EVERY_MS):
        satisfied = rng.random() < (p(t) if callable(p) else p)
        out.append(encode(survey("csat", 5 if satisfied else 2, t, CHANNEL)))
    return out


def fired(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["rule"], m["channel"]) for m in messages if m["state"] == "firing"]


def feed_all(r: Replay, values: list[bytes], now: int) -> None:
    for value in values:
        r.feed("cx.surveys", value, now)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_drop_first_seen_ten_minutes_late_fires_at_once(seed: int) -> None:
    """Ten minutes at 40% arrive as a backlog after a day at 85% (an outage ends)."""
    rng = random.Random(seed)
    r = replay()
    drop_at = NOW - 10 * MINUTE_MS
    feed_all(r, answers(rng, NOW - 23 * HOUR_MS, drop_at, 0.85), drop_at)
    assert fired(r.alerts(drop_at)) == []
    feed_all(r, answers(rng, drop_at, NOW, 0.40), NOW)  # all of it at once, now
    firing = fired(r.alerts(NOW)) + fired(r.alerts(NOW + 1000))
    assert ("csat_sustained_drop", CHANNEL) in firing, firing


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_decline_spread_over_an_hour_fires(seed: int) -> None:
    """85% for a day, then a steady slide to 45% over an hour: no 2-minute cliff."""
    rng = random.Random(seed)
    r = replay()
    start = NOW - HOUR_MS
    feed_all(r, answers(rng, NOW - 23 * HOUR_MS, start, 0.85), start)

    def p(t: int) -> float:
        return 0.85 - 0.40 * (t - start) / HOUR_MS

    first_fired = None
    for minute in range(60):
        at = start + minute * MINUTE_MS
        feed_all(r, answers(rng, at, at + MINUTE_MS, p), at + MINUTE_MS)
        firing = fired(r.alerts(at + MINUTE_MS))
        if ("csat_sustained_drop", CHANNEL) in firing and first_fired is None:
            first_fired = minute
    assert first_fired is not None, "the slow decline never alerted"
    assert first_fired < 60


@pytest.mark.parametrize("seed", range(5))
def test_steady_traffic_raises_no_alert(seed: int) -> None:
    """A day and two hours at one steady satisfaction (drawn per seed): nothing fires,
    whichever default rule; evaluated every minute of the last two hours."""
    rng = random.Random(seed)
    level = rng.uniform(0.6, 0.95)
    r = replay()
    start = NOW - 2 * HOUR_MS
    feed_all(r, answers(rng, NOW - 23 * HOUR_MS, start, level), start)
    messages = []
    for minute in range(120):
        at = start + minute * MINUTE_MS
        feed_all(r, answers(rng, at, at + MINUTE_MS, level), at + MINUTE_MS)
        messages.extend(r.alerts(at + MINUTE_MS))
    assert [m for m in messages if m["rule"].startswith("csat_") and "drop" in m["rule"]] == []
