"""Rule evaluation on the pure core: significance, min_samples, for, hysteresis, one message per episode."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app import config
from stream_app.config import ConfigError
from stream_app.core import alerts
from stream_app.core.aggregate import Aggregate
from stream_app.core.live_queue import LiveFigures
from stream_app.core.measures import METRICS, measure
from stream_app.core.rules import Rule, RuleError, _for_channels, parse_rule

CHANNELS = ("chat", "email", "phone")


def rule(**fields: Any) -> Rule:
    raw = {"name": "r", "kind": "drop", "metric": "csat", "window": "15m", "baseline": "24h", "min_drop": 0.1}
    raw.update(fields)
    return parse_rule(raw, CHANNELS, 60_000, 25 * 3_600_000)


def csat(satisfied: int, unhappy: int) -> Aggregate:
    agg = Aggregate()
    for _ in range(satisfied):
        agg.add_fact(("chat", 0, "csat", 5, 5), 1)
    for _ in range(unhappy):
        agg.add_fact(("chat", 0, "csat", 1, 5), 1)
    return agg


def windows(window: Aggregate, earlier: Aggregate) -> dict[str, Aggregate]:
    """The 24 h baseline contains the 15 m window, as in the scoreboard."""
    baseline = earlier.copy()
    baseline.merge(window)
    return {"15m": window, "24h": baseline}


# --- significance -------------------------------------------------------------


def test_real_drop_is_a_breach() -> None:
    reading = alerts.read(rule(min_samples=20), windows(csat(58, 42), csat(840, 160)), None)
    assert reading.verdict == alerts.BREACH
    assert reading.value == pytest.approx(0.58)
    assert reading.baseline == pytest.approx(0.84)  # baseline without the window
    assert reading.p_value is not None and reading.p_value < 1e-6


def test_small_noisy_drop_is_not_significant() -> None:
    # 4 of 6 satisfied (67%) against 84%: big in points, meaningless at n = 6.
    reading = alerts.read(rule(min_samples=1), windows(csat(4, 2), csat(840, 160)), None)
    assert reading.verdict != alerts.BREACH
    assert reading.p_value is not None and reading.p_value > 0.05


def test_significant_but_small_drop_does_not_fire() -> None:
    reading = alerts.read(rule(min_drop=0.10), windows(csat(7_800, 2_200), csat(84_000, 16_000)), None)
    assert reading.p_value is not None and reading.p_value < 1e-6  # 78% vs 84% at n=10 000
    assert reading.verdict != alerts.BREACH  # but only 6 points


def test_no_alert_below_min_samples() -> None:
    reading = alerts.read(rule(min_samples=30), windows(csat(0, 25), csat(840, 160)), None)
    assert reading.verdict == alerts.UNKNOWN
    state, transition = alerts.step(rule(min_samples=30), None, reading, 0)
    assert transition is None and state["s"] == "ok"


def test_nps_drop_uses_a_test_on_per_response_scores() -> None:
    def nps(promoters: int, detractors: int, passives: int) -> Aggregate:
        agg = Aggregate()
        for score, count in ((10, promoters), (3, detractors), (8, passives)):
            for _ in range(count):
                agg.add_fact(("chat", 0, "nps", score, 10), 1)
        return agg

    r = rule(metric="nps", min_drop=15, min_samples=30)
    assert alerts.read(r, windows(nps(30, 40, 30), nps(500, 270, 230)), None).verdict == alerts.BREACH
    assert alerts.read(r, windows(nps(5, 4, 3), nps(500, 270, 230)), None).verdict != alerts.BREACH


def test_mean_drop_direction_follows_the_metric() -> None:
    def waits(seconds: list[int]) -> Aggregate:
        agg = Aggregate()
        for s in seconds:
            agg.add_fact(("chat", 0, "chat_wait", s * 1000, 0), 1)
        return agg

    r = rule(metric="chat_wait_mean", min_drop=30, min_samples=20)
    slower = alerts.read(r, windows(waits([200] * 40), waits([60, 70, 80] * 100)), None)
    faster = alerts.read(r, windows(waits([20] * 40), waits([60, 70, 80] * 100)), None)
    assert slower.verdict == alerts.BREACH  # waiting longer is worse
    assert faster.verdict == alerts.CLEAR


def test_threshold_rule_and_its_hysteresis() -> None:
    r = parse_rule(
        {"name": "t", "kind": "threshold", "metric": "csat", "window": "15m", "op": "below",
         "threshold": 0.8, "hysteresis": 0.05, "min_samples": 10},
        CHANNELS, 60_000, 25 * 3_600_000,
    )  # fmt: skip
    assert alerts.read(r, {"15m": csat(70, 30)}, 0).verdict == alerts.BREACH
    assert alerts.read(r, {"15m": csat(82, 18)}, 0).verdict == alerts.BETWEEN
    assert alerts.read(r, {"15m": csat(90, 10)}, 0).verdict == alerts.CLEAR


# --- episodes -------------------------------------------------------------------


def reading(verdict: str) -> alerts.Reading:
    return alerts.Reading(verdict, 0.5, 0.8, 100)


def run(r: Rule, verdicts: list[str], step_ms: int = 1000) -> list[tuple[int, str]]:
    state = None
    out = []
    for i, verdict in enumerate(verdicts):
        state, transition = alerts.step(r, state, reading(verdict), i * step_ms)
        if transition:
            out.append((i, transition))
    return out


def test_for_must_hold_before_firing() -> None:
    r = rule(**{"for": "3s"})
    assert run(r, ["breach", "breach", "clear", "breach", "breach", "breach", "breach"]) == [(6, "firing")]


def test_hysteresis_band_keeps_it_firing_and_clear_for_must_hold() -> None:
    r = rule(clear_for="2s")
    verdicts = ["breach", "between", "clear", "between", "clear", "clear", "clear", "between"]
    assert run(r, verdicts) == [(0, "firing"), (6, "resolved")]


def test_one_firing_and_one_resolved_per_episode() -> None:
    r = rule()
    assert run(r, ["breach"] * 5 + ["unknown"] * 3 + ["breach"] + ["clear"] * 4) == [
        (0, "firing"),
        (9, "resolved"),
    ]


def test_messages_follow_the_schema_and_share_the_alert_id() -> None:
    from stream_app.core.intake import Schemas

    r = rule(min_samples=20)
    states: dict[str, alerts.State] = {}
    fired = alerts.evaluate((r,), "chat", windows(csat(58, 42), csat(840, 160)), None, states, 1_000)
    resolved = alerts.evaluate((r,), "chat", windows(csat(84, 16), csat(840, 160)), None, states, 9_000)
    assert [m["state"] for m in fired + resolved] == ["firing", "resolved"]
    assert fired[0]["alert_id"] == resolved[0]["alert_id"]
    assert fired[0]["summary"] == "CSAT on chat fell from 84% to 58% (n=100)"
    for message in fired + resolved:
        assert Schemas().error("alert", message) is None


def test_rules_skip_the_rollup_unless_listed() -> None:
    assert not rule().applies_to("all") and rule().applies_to("chat")
    assert rule(channels=["all"]).applies_to("all") and not rule(channels=["all"]).applies_to("chat")


# --- noisy stationary streams ---------------------------------------------------


# Derandomized: a false episode is rare, not impossible (confidence 0.999 per step,
# 200 correlated steps); a fresh random draw each CI run made this fail about once
# in a few dozen runs (e.g. seed=134594, p=0.5508, per_step=8 gives two).
@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.floats(0.55, 0.95), st.integers(8, 40))
def test_no_flapping_on_a_noisy_stationary_stream(seed: int, p: float, per_step: int) -> None:
    """Satisfaction never changes: at most one (false) episode in 200 steps, never a flap."""
    rng = random.Random(seed)
    r = rule(window="15m", baseline="24h", min_drop=0.10, confidence=0.999, clear_confidence=0.99,
             hysteresis=0.05, min_samples=20, clear_for="30s")  # fmt: skip
    earlier = csat(*_draw(rng, p, 2_000))
    recent: list[tuple[int, int]] = []
    state = None
    transitions = []
    for step in range(200):
        recent.append(_draw(rng, p, per_step))
        recent = recent[-15:]  # a sliding 15-step window
        window = csat(sum(s for s, _ in recent), sum(u for _, u in recent))
        state, transition = alerts.step(
            r, state, alerts.read(r, windows(window, earlier), None), step * 10_000
        )
        if transition:
            transitions.append(transition)
    assert transitions.count("firing") <= 1


def _draw(rng: random.Random, p: float, n: int) -> tuple[int, int]:
    satisfied = sum(rng.random() < p for _ in range(n))
    return satisfied, n - satisfied


# --- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"metric": "happiness"}, "unknown metric 'happiness'"),
        ({"window": "fortnight"}, "unknown window 'fortnight'"),
        ({"baseline": "48h"}, "longer than the data kept"),
        ({"channels": ["chat", "fax"]}, "unknown channel 'fax'"),
        ({"metric": "first_response_p90"}, "drop rules need a ratio, NPS or mean metric"),
        ({"kind": "spike"}, "kind must be one of"),
        ({"for": "soon"}, "for must be a duration"),
        ({"confidence": 1.5}, "confidence must be between"),
    ],
)
def test_bad_rules_are_one_clear_line(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RuleError) as raised:
        rule(**fields)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_bad_rules_file_stops_start_up_naming_the_variable(tmp_path: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: x\n    kind: threshold\n    metric: csat\n    window: 1h\n"
                    "    op: below\n    threshold: 0.8\n    channels: [chat, fax]\n")  # fmt: skip
    with pytest.raises(ConfigError) as raised:
        config.load({"STREAM_APP_RULES": str(path)})
    assert str(raised.value).startswith("STREAM_APP_RULES=") and "unknown channel 'fax'" in str(raised.value)


def test_every_spec_metric_can_be_used_in_a_rule() -> None:
    for metric, spec in METRICS.items():
        raw = {"name": metric, "kind": "threshold", "metric": metric, "window": "1h"}
        r = parse_rule({**raw, "op": "above", "threshold": 1}, CHANNELS, 60_000, 25 * 3_600_000)
        live = LiveFigures(open_tickets=3)
        assert alerts.read(r, {"1h": Aggregate()}, live).verdict in (
            alerts.CLEAR,
            alerts.UNKNOWN,
            alerts.BREACH,
        )
        assert measure(metric, Aggregate(), live).n >= 0, spec


def test_shipped_default_rules_load() -> None:
    names = [r.name for r in config.load({}).alert_rules]
    assert "csat_drop" in names and len(names) == len(set(names))


def test_shipped_default_rules_adapt_to_any_valid_channel_list() -> None:
    """SPEC §1: a valid configuration always starts; defaults adapt to the channels."""
    custom = config.load({"STREAM_APP_CHANNELS": "voice,webchat,email"})
    names = {r.name for r in custom.alert_rules}
    assert {"csat_drop", "csat_low"} <= names
    for r in custom.alert_rules:
        assert r.channels is None or set(r.channels) <= {"voice", "webchat", "email", "all"}, r
    # a shipped rule's channel list keeps the configured ones; with none left the rule
    # is left out, not turned into "every channel"
    live = {"name": "live", "channels": ["chat", "phone", "all"]}
    assert _for_channels(live, ("chat", "email")) == {**live, "channels": ["chat", "all"]}
    assert _for_channels({"name": "x", "channels": ["phone"]}, ("email",)) is None
    assert _for_channels({"name": "y", "channels": "all"}, ("email",)) == {"name": "y", "channels": "all"}


def test_a_users_rules_file_stays_strict_about_channels(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: r, kind: threshold, metric: csat, window: 1h, op: below, threshold: 0.5,"
        " channels: [chta]}\n"
    )
    with pytest.raises(ConfigError, match=r"STREAM_APP_RULES=.*unknown channel 'chta'"):
        config.load({"STREAM_APP_RULES": str(rules)})


def test_live_queue_rules_hold_while_the_intake_catches_up() -> None:
    r = parse_rule(
        {"name": "wait", "kind": "threshold", "metric": "oldest_waiting_chat_age", "window": "15m",
         "op": "above", "threshold": 600, "for": "0s", "hysteresis": 0},
        CHANNELS, 60_000, 25 * 3_600_000,
    )  # fmt: skip
    waiting = LiveFigures(chats_waiting=1, oldest_waiting_chat_seconds=900.0)
    windows = {"15m": Aggregate()}
    states: dict[str, Any] = {}
    # old events still coming in: the chat's agent may be in them; nothing fires
    assert alerts.evaluate((r,), "chat", windows, waiting, states, 1_000, live_settled=False) == []
    fired = alerts.evaluate((r,), "chat", windows, waiting, states, 2_000)
    assert [m["state"] for m in fired] == ["firing"]
    assert fired[0]["summary"] == "Wait of the oldest waiting chat on chat is 15.0 min now, above 10.0 min"
    # a hold never resolves either
    calm = LiveFigures()
    assert alerts.evaluate((r,), "chat", windows, calm, states, 3_000, live_settled=False) == []
    assert [m["state"] for m in alerts.evaluate((r,), "chat", windows, calm, states, 4_000)] == ["resolved"]
