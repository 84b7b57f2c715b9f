"""Every SPEC §4 metric as a measurement of an aggregate: value, n and spread.

Alert rules name these metrics; the significance tests need more than the
value (hits for proportions, per-observation variance for means and NPS), and
all of it comes from the additive counters, so "baseline without the current
window" is a plain subtraction.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.core import sketch
from stream_app.core.aggregate import Aggregate
from stream_app.core.live_queue import LiveFigures


@dataclass(frozen=True)
class MetricSpec:
    label: str
    kind: str  # ratio | nps | mean | quantile | count | gauge
    higher_is_better: bool
    unit: str  # ratio | points | seconds | score | count
    hits: str = ""
    n: str = ""
    total: str = ""
    squares: str = ""
    sketch: str = ""
    quantile: float = 0.0
    also: str = ""  # misses counted in n too (open breaches in SLA attainment)
    live: str = ""  # gauge: the LiveFigures field it reads
    scale: float = 1.0  # total / scale is the value (ms → s, half points → points)
    squares_scale: float = 1.0  # squares / squares_scale are in the value's unit squared


def _durations(prefix: str, name: str, label: str) -> dict[str, MetricSpec]:
    return {
        f"{prefix}_mean": MetricSpec(
            f"mean {label}", "mean", False, "seconds", n=f"{name}_n", total=f"{name}_sum",
            squares=f"{name}_sq", scale=1000.0,
        ),
        f"{prefix}_p50": MetricSpec(f"p50 {label}", "quantile", False, "seconds", sketch=name, quantile=0.5),
        f"{prefix}_p90": MetricSpec(f"p90 {label}", "quantile", False, "seconds", sketch=name, quantile=0.9),
    }  # fmt: skip


def _gauge(label: str, field: str, unit: str = "count") -> MetricSpec:
    """A live-queue gauge (now, not windowed): reads `LiveFigures.<field>`."""
    return MetricSpec(label, "gauge", False, unit, live=field)


METRICS: dict[str, MetricSpec] = {
    "csat": MetricSpec("CSAT", "ratio", True, "ratio", hits="csat_ok", n="csat_n"),
    "nps": MetricSpec("NPS", "nps", True, "points", n="nps_n"),
    "ces": MetricSpec("CES agreement", "ratio", True, "ratio", hits="ces_ok", n="ces_n"),
    "ces_mean": MetricSpec(
        "mean CES (7-point scale)",
        "mean",
        True,
        "score",
        total="ces_h",
        squares="ces_hsq",
        n="ces_n",
        scale=2.0,
        squares_scale=4.0,
    ),
    "fcr": MetricSpec("FCR", "ratio", True, "ratio", hits="fcr_ok", n="fcr_n"),
    "abandoned": MetricSpec("chat abandonment", "ratio", False, "ratio", hits="aband", n="end_n"),
    "contained": MetricSpec("self-service containment", "ratio", True, "ratio", hits="contn", n="end_n"),
    "service_level": MetricSpec("service level", "ratio", True, "ratio", hits="svl_ok", n="svl_n"),
    "response_rate": MetricSpec(
        "survey response rate", "ratio", True, "ratio", hits="offer_resp", n="offer_n"
    ),
    "sla_first_response": MetricSpec(
        "ticket first-response SLA attainment",
        "ratio",
        True,
        "ratio",
        hits="slafr_ok",
        n="slafr_n",
        also="slafr_open",
    ),
    "sla_chat_first_response": MetricSpec(
        "chat first-response SLA attainment", "ratio", True, "ratio", hits="slacfr_ok", n="slacfr_n"
    ),
    "sla_resolution": MetricSpec(
        "resolution SLA attainment",
        "ratio",
        True,
        "ratio",
        hits="slares_ok",
        n="slares_n",
        also="slares_open",
    ),
    "sla_first_response_closed": MetricSpec(
        "ticket first-response SLA attainment over answered tickets",
        "ratio",
        True,
        "ratio",
        hits="slafr_ok",
        n="slafr_n",
    ),
    "sla_resolution_closed": MetricSpec(
        "resolution SLA attainment over resolved tickets",
        "ratio",
        True,
        "ratio",
        hits="slares_ok",
        n="slares_n",
    ),
    **_durations("first_response", "frt", "ticket first response time"),
    **_durations("chat_first_response", "cfrt", "chat first response time"),
    **_durations("resolution", "res", "resolution time"),
    **_durations("first_response_business", "frtb", "ticket first response time (SLA clock)"),
    **_durations("resolution_business", "resb", "resolution time (SLA clock)"),
    **_durations("chat_wait", "wait", "chat wait"),
    "volume_tickets": MetricSpec("tickets created", "count", True, "count", n="tickets"),
    "volume_chats": MetricSpec("chats started", "count", True, "count", n="chats"),
    "volume_surveys": MetricSpec("survey responses", "count", True, "count", n="surveys"),
    "open_tickets": _gauge("open tickets", "open_tickets"),
    "breaching_first_response": _gauge(
        "open tickets past their first-response target", "breaching_first_response"
    ),
    "breaching_resolution": _gauge("open tickets past their resolution target", "breaching_resolution"),
    "breach_soon_first_response": _gauge(
        "open tickets breaching their first-response target within 15 minutes", "breach_soon_first_response"
    ),
    "breach_soon_resolution": _gauge(
        "open tickets breaching their resolution target within 15 minutes", "breach_soon_resolution"
    ),
    "oldest_open_ticket_age": _gauge(
        "age of the oldest open ticket", "oldest_open_ticket_seconds", "seconds"
    ),
    "chats_waiting": _gauge("chats waiting", "chats_waiting"),
    "oldest_waiting_chat_age": _gauge(
        "wait of the oldest waiting chat", "oldest_waiting_chat_seconds", "seconds"
    ),
}


@dataclass(frozen=True)
class Measure:
    value: float | None
    n: int
    hits: int = 0
    variance: float | None = None  # per observation, for tests on means and NPS


def _count(agg: Aggregate, spec: MetricSpec) -> int:
    if spec.n:
        return agg.get(spec.n) + (agg.get(spec.also) if spec.also else 0)
    return sketch.total(agg.sketches.get(spec.sketch, {}))


def measure(metric: str, agg: Aggregate, live: LiveFigures | None = None) -> Measure:
    """The metric over a window's aggregate; gauges read the live queue (`live`, now)."""
    spec = METRICS[metric]
    if spec.kind == "gauge":
        value = getattr(live or LiveFigures(), spec.live)
        return Measure(None, 0) if value is None else Measure(float(value), 1)
    n = _count(agg, spec)
    if spec.kind == "count":
        return Measure(float(n), n)
    if n <= 0:
        return Measure(None, 0)
    if spec.kind == "ratio":
        hits = agg.get(spec.hits)
        p = hits / n
        return Measure(p, n, hits, p * (1 - p))
    if spec.kind == "nps":
        p, d = agg.get("nps_pro") / n, agg.get("nps_det") / n
        return Measure(100.0 * (p - d), n, variance=10_000.0 * ((p + d) - (p - d) ** 2))
    if spec.kind == "mean":
        average = agg.get(spec.total) / spec.scale / n
        variance = max(0.0, agg.get(spec.squares) / spec.squares_scale / n - average * average)
        return Measure(average, n, variance=variance)
    ms = sketch.quantiles(agg.sketches.get(spec.sketch, {}), [spec.quantile])[spec.quantile]
    return Measure(None if ms is None else ms / 1000.0, n)


def without(outer: Aggregate, inner: Aggregate) -> Aggregate:
    """Counters of `outer` minus `inner` (a baseline without the window it contains).

    Sketches are left out: quantiles are not tested for significance.
    """
    rest = Aggregate()
    rest.counts = dict(outer.counts)
    for name, amount in inner.counts.items():
        rest._bump(name, -amount)
    return rest


def format_value(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    unit = METRICS[metric].unit
    if unit == "ratio":
        return f"{value * 100:.0f}%"
    if unit == "points":
        return f"{value:+.0f}"
    if unit == "seconds":
        if value >= 3600:
            return f"{value / 3600:.1f} h"
        return f"{value / 60:.1f} min" if value >= 120 else f"{value:.0f} s"
    if unit == "score":
        return f"{value:.2f}"
    return f"{value:.0f}"
