"""Alert evaluation: is the condition real, has it held long enough, and one
`firing` plus one `resolved` message per episode.

A drop rule compares the window with its baseline *without* that window (so
the two samples are independent) and fires only when the drop is at least
`min_drop` AND a one-sided test rejects "no drop" at `confidence`: a
two-proportion test for ratios, a two-sample z-test on per-response values
for NPS (±100/0 per response) and for means. Short windows hold few
responses, so up to EXACT_UP_TO responses the two-proportion test is Fisher's
exact test instead of its normal approximation. Hysteresis: once firing, the
alert stays until the drop is below `min_drop - hysteresis` or no longer
significant at `clear_confidence` (threshold rules: back past
`threshold ± hysteresis`), for at least `clear_for`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from stream_app.core.aggregate import Aggregate
from stream_app.core.live_queue import LiveFigures
from stream_app.core.measures import METRICS, Measure, format_value, measure, without
from stream_app.core.queues import is_queue, queue_name
from stream_app.core.rules import Rule
from stream_app.core.timeutil import format_ms

_NORMAL = NormalDist()

BREACH, CLEAR, BETWEEN, UNKNOWN = "breach", "clear", "between", "unknown"


@dataclass(frozen=True)
class Reading:
    verdict: str  # breach | clear | between | unknown
    value: float | None
    baseline: float | None
    n: int
    p_value: float | None = None


#: Above this many responses in the window the z-test is accurate and much cheaper.
EXACT_UP_TO = 400


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_lower_tail(hits: int, n: int, base_hits: int, base_n: int) -> float:
    """One-sided Fisher exact test: P(window hits <= observed | both samples share one rate).

    Exact at any n; the normal approximation is not at the 15-40 responses a short
    window holds, and understates the lower tail there (false alerts).
    """
    total, successes = n + base_n, hits + base_hits
    low = max(0, n - (total - successes))
    denominator = _log_comb(total, n)
    terms = [
        _log_comb(successes, x) + _log_comb(total - successes, n - x) - denominator
        for x in range(low, hits + 1)
    ]
    peak = max(terms)
    return min(1.0, math.exp(peak) * sum(math.exp(t - peak) for t in terms))


def drop_p_value(rule: Rule, now: Measure, before: Measure) -> float:
    """One-sided p-value of "no worsening" given the window and the independent baseline."""
    assert now.value is not None and before.value is not None
    worse = (before.value - now.value) if rule.worse_is_lower else (now.value - before.value)
    kind = METRICS[rule.metric].kind
    if kind == "ratio" and now.n <= EXACT_UP_TO:
        if rule.worse_is_lower:
            return fisher_lower_tail(now.hits, now.n, before.hits, before.n)
        # worse is more hits (abandonment): the lower tail of the misses
        return fisher_lower_tail(now.n - now.hits, now.n, before.n - before.hits, before.n)
    if kind == "ratio":
        pooled = (now.hits + before.hits) / (now.n + before.n)
        variance = pooled * (1 - pooled) * (1 / now.n + 1 / before.n)
    else:
        variance = (now.variance or 0.0) / now.n + (before.variance or 0.0) / before.n
    if variance <= 0:
        return 0.0 if worse > 0 else 1.0
    return 1.0 - _NORMAL.cdf(worse / math.sqrt(variance))


def read(rule: Rule, windows: dict[str, Aggregate], live: LiveFigures | None = None) -> Reading:
    now = measure(rule.metric, windows[rule.window], live)
    if rule.kind == "threshold":
        assert rule.threshold is not None
        if now.value is None or now.n == 0:
            return Reading(CLEAR if now.n == 0 else UNKNOWN, now.value, None, now.n)
        if now.n < rule.min_samples:
            return Reading(UNKNOWN, now.value, None, now.n)
        sign = 1 if rule.op == "above" else -1
        beyond = sign * (now.value - rule.threshold)
        if beyond > 0:
            return Reading(BREACH, now.value, None, now.n)
        verdict = CLEAR if -beyond >= rule.hysteresis else BETWEEN
        return Reading(verdict, now.value, None, now.n)
    assert rule.baseline is not None
    before = measure(rule.metric, without(windows[rule.baseline], windows[rule.window]), live)
    if now.n == 0:
        return Reading(CLEAR, None, before.value, 0)
    if now.value is None or before.value is None or min(now.n, before.n) < rule.min_samples:
        return Reading(UNKNOWN, now.value, before.value, now.n)
    worse = (before.value - now.value) if rule.worse_is_lower else (now.value - before.value)
    p_value = drop_p_value(rule, now, before)
    if worse >= rule.min_drop and p_value < 1 - rule.confidence:
        verdict = BREACH
    elif worse < rule.min_drop - rule.hysteresis or p_value >= 1 - rule.clear_confidence:
        verdict = CLEAR
    else:
        verdict = BETWEEN
    return Reading(verdict, now.value, before.value, now.n, p_value)


# --- episodes -------------------------------------------------------------------

#: Alert state (JSON-compatible, kept in a changelogged table):
#: {"s": "ok"|"pending"|"firing"|"clearing", "since": ms, "started": ms|None}
State = dict[str, Any]


def step(rule: Rule, state: State | None, reading: Reading, now_ms: int) -> tuple[State, str | None]:
    """Advance one alert's state; returns the new state and "firing"/"resolved" on a change."""
    current = dict(state or {"s": "ok", "since": now_ms, "started": None})
    status, verdict = current["s"], reading.verdict

    def fire() -> tuple[State, str | None]:
        return {"s": "firing", "since": now_ms, "started": now_ms}, "firing"

    if status in ("ok", "pending"):
        if verdict != BREACH:
            return (
                (current, None) if status == "ok" else ({"s": "ok", "since": now_ms, "started": None}, None)
            )
        since = current["since"] if status == "pending" else now_ms
        if now_ms - since >= rule.for_ms:
            return fire()
        return {"s": "pending", "since": since, "started": None}, None
    # firing or clearing
    if verdict == CLEAR:
        since = current["since"] if status == "clearing" else now_ms
        if now_ms - since >= rule.clear_for_ms:
            return {"s": "ok", "since": now_ms, "started": None, "ended": current["started"]}, "resolved"
        return {"s": "clearing", "since": since, "started": current["started"]}, None
    if verdict == UNKNOWN and status == "clearing":
        return current, None
    return {"s": "firing", "since": current["since"], "started": current["started"]}, None


def alert_id(rule: Rule, channel: str, started_ms: int) -> str:
    return f"{rule.name}/{channel}/{rule.window}/{started_ms}"


def summary(rule: Rule, series: str, transition: str, reading: Reading) -> str:
    spec = METRICS[rule.metric]
    channel = f"queue {queue_name(series)}" if is_queue(series) else series
    value = format_value(rule.metric, reading.value)
    label = spec.label if spec.label.isupper() else spec.label.capitalize()
    if transition == "resolved":
        if rule.kind == "drop":
            base = format_value(rule.metric, reading.baseline)
            return (
                f"{label} on {channel} recovered: {value} over {rule.window} (baseline {base}, n={reading.n})"
            )
        if spec.kind == "gauge":  # the live queue: now, not over a window
            return f"{label} on {channel} is back to {value} now"
        return f"{label} on {channel} is back to {value} over {rule.window} (n={reading.n})"
    if rule.kind == "drop":
        verb = "fell" if rule.worse_is_lower else "rose"
        base = format_value(rule.metric, reading.baseline)
        return f"{label} on {channel} {verb} from {base} to {value} (n={reading.n})"
    limit = format_value(rule.metric, rule.threshold)
    if spec.kind == "gauge":
        return f"{label} on {channel} is {value} now, {rule.op} {limit}"
    return f"{label} on {channel} is {value} over {rule.window}, {rule.op} {limit} (n={reading.n})"


def alert_message(
    rule: Rule, channel: str, transition: str, reading: Reading, started_ms: int, now_ms: int
) -> dict[str, Any]:
    """The `cx.alerts` record (schemas/alert.v1.json); a queue series' alert names
    its `queue` instead of a `channel`."""
    where = {"queue": queue_name(channel)} if is_queue(channel) else {"channel": channel}
    return {
        "alert_id": alert_id(rule, channel, started_ms),
        "rule": rule.name,
        **where,
        "window": rule.window,
        "state": transition,
        "severity": rule.severity,
        "metric": rule.metric,
        "value": None if reading.value is None else round(reading.value, 4),
        "baseline": None if reading.baseline is None else round(reading.baseline, 4),
        "threshold": rule.threshold,
        "n": reading.n,
        "summary": summary(rule, channel, transition, reading),
        "started_at": format_ms(started_ms),
        "at": format_ms(now_ms),
    }


def evaluate(
    rules: tuple[Rule, ...],
    channel: str,
    windows: dict[str, Aggregate],
    live: LiveFigures | None,
    states: dict[str, State],
    now_ms: int,
    live_settled: bool = True,
) -> list[dict[str, Any]]:
    """Step every rule of one channel; `states` (key "rule/window") is updated in place.

    `live_settled` False (the intake is working through old events for this channel)
    holds the rules on live-queue gauges where they are: a chat whose agent's join
    is still in the backlog would look as if it had waited all along.

    Returns the alert messages to publish, in rule order.
    """
    messages = []
    for rule in rules:
        if not rule.applies_to(channel):
            continue
        key = f"{rule.name}/{rule.window}"
        if live_settled or METRICS[rule.metric].kind != "gauge":
            reading = read(rule, windows, live)
        else:
            reading = Reading(UNKNOWN, None, None, 0)
        previous = states.get(key)
        state, transition = step(rule, previous, reading, now_ms)
        states[key] = state
        if transition is not None:
            started = state["started"] if transition == "firing" else state["ended"]
            messages.append(alert_message(rule, channel, transition, reading, started, now_ms))
    return messages
