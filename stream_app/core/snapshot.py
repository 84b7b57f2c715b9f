"""Turn a window's aggregate into the SPEC §6 score snapshot."""

from __future__ import annotations

from typing import Any

from stream_app.core import sketch
from stream_app.core.aggregate import Aggregate
from stream_app.core.formulas import mean, nps, nps_interval, ratio, wilson_interval
from stream_app.core.live_queue import LiveFigures

QUANTILES = (0.5, 0.9)


# Values are exact floats (SPEC §6: full precision; rounding is for displays).


def _ci(bounds: tuple[float, float] | None) -> list[float] | None:
    return None if bounds is None else list(bounds)


def _share(agg: Aggregate, hits: str, n: str, also: str = "") -> dict[str, Any]:
    """A ratio hits / n; `also` names a counter of misses that count in n too."""
    k, total = agg.get(hits), agg.get(n) + (agg.get(also) if also else 0)
    return {"value": ratio(k, total), "n": total, "ci95": _ci(wilson_interval(k, total))}


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _durations(agg: Aggregate, name: str) -> dict[str, Any]:
    counts = agg.sketches.get(name, {})
    n = sketch.total(counts)
    qs = sketch.quantiles(counts, QUANTILES)
    return {
        "p50": _seconds(qs[0.5]),
        "p90": _seconds(qs[0.9]),
        "mean": _seconds(mean(agg.get(f"{name}_sum"), n)),
        "n": n,
        "sum": agg.get(f"{name}_sum") / 1000,
    }


def _headline(agg: Aggregate) -> dict[str, Any]:
    """The figures a wallboard shows; also what `previous` carries for trend arrows."""
    nps_n, pro, det = agg.get("nps_n"), agg.get("nps_pro"), agg.get("nps_det")
    ces_n = agg.get("ces_n")
    ces = _share(agg, "ces_ok", "ces_n")
    half_points = mean(agg.get("ces_h"), ces_n)  # on the 7-point scale (SPEC §4)
    ces["mean"] = None if half_points is None else half_points / 2
    return {
        "csat": _share(agg, "csat_ok", "csat_n"),
        "nps": {
            "value": nps(pro, det, nps_n),
            "n": nps_n,
            "ci95": _ci(nps_interval(pro, det, nps_n)),
            "promoters": pro,
            "detractors": det,
        },
        "ces": {"value": ces["value"], "mean": ces["mean"], "n": ces_n, "ci95": ces["ci95"]},
        "fcr": _share(agg, "fcr_ok", "fcr_n"),
        "first_response_seconds": _durations(agg, "frt"),
        "chat_first_response_seconds": _durations(agg, "cfrt"),
        "volume": {
            "tickets": agg.get("tickets"),
            "chats": agg.get("chats"),
            "surveys": agg.get("surveys"),
        },
    }


def build_snapshot(
    channel: str,
    window: str,
    agg: Aggregate,
    live: LiveFigures,
    as_of: str,
    previous: Aggregate | None = None,
) -> dict[str, Any]:
    """The JSON object published on `cx.metrics` and served by `/api/v1/scores`.

    Values are null when n = 0: an empty window has no score, not a score of 0.
    `previous` is the same-length window just before this one (null where
    retention no longer holds it: `24h` and `today`). `agg` may carry the open
    breaches inside the window (`slafr_open`, `slares_open`): `sla` counts them as
    breached, `sla_closed` is over answered / resolved tickets only. `live` is the
    channel's live queue now (the same in every window).
    """
    head = _headline(agg)
    return {
        "channel": channel,
        "window": window,
        "as_of": as_of,
        "csat": head["csat"],
        "nps": head["nps"],
        "ces": head["ces"],
        "fcr": head["fcr"],
        "first_response_seconds": head["first_response_seconds"],
        "first_response_business_seconds": _durations(agg, "frtb"),
        "chat_first_response_seconds": head["chat_first_response_seconds"],
        "resolution_seconds": _durations(agg, "res"),
        "resolution_business_seconds": _durations(agg, "resb"),
        "chat_wait_seconds": _durations(agg, "wait"),
        "abandoned": _share(agg, "aband", "end_n"),
        "contained": _share(agg, "contn", "end_n"),
        "service_level": _share(agg, "svl_ok", "svl_n"),
        "response_rate": _share(agg, "offer_resp", "offer_n"),
        "sla": {
            "first_response": _share(agg, "slafr_ok", "slafr_n", "slafr_open"),
            "chat_first_response": _share(agg, "slacfr_ok", "slacfr_n"),
            "resolution": _share(agg, "slares_ok", "slares_n", "slares_open"),
        },
        "sla_closed": {
            "first_response": _share(agg, "slafr_ok", "slafr_n"),
            "chat_first_response": _share(agg, "slacfr_ok", "slacfr_n"),
            "resolution": _share(agg, "slares_ok", "slares_n"),
        },
        "volume": head["volume"],
        "open_tickets": live.open_tickets,
        "live": live.to_json(),
        "previous": None if previous is None else _headline(previous),
    }


def same_scores(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    """Equal apart from `as_of`: decides whether a snapshot needs re-publishing."""
    if a is None:
        return False
    return {k: v for k, v in a.items() if k != "as_of"} == {k: v for k, v in b.items() if k != "as_of"}
