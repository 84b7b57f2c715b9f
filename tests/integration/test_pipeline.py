"""End to end on a real broker: events in, the exact scores of the pure core out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from stream_app.core.replay import Replay
from tests.factories import encode, now_ms, records, seed_mix, survey
from tests.integration.harness import WorkerProcess, channel, consume_all, metric_value, produce
from tests.unit.conftest import make_intake

pytestmark = pytest.mark.integration


def reference(events: list[tuple[str, dict[str, Any]]], ch: str, at: int) -> dict[str, dict[str, Any]]:
    replay = Replay(make_intake(extra_channels=frozenset({ch})), at)
    for topic, ev in events:
        replay.feed(topic, encode(ev), at)
    return {s["window"]: s for s in replay.snapshots(at) if s["channel"] == ch}


def without_as_of(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot without what moves with the wall clock alone: `as_of` and the
    live queue's ages."""
    found = {k: v for k, v in snapshot.items() if k != "as_of"}
    if "live" in found:
        found["live"] = {k: v for k, v in found["live"].items() if not k.endswith("_seconds")}
    return found


def test_scores_match_the_pure_core(worker: WorkerProcess, bootstrap: str) -> None:
    ch = channel("e2e")
    t = now_ms()
    events = seed_mix(ch, t)
    shuffled = events[::2] + events[1::2][::-1]  # out of order on purpose
    asyncio.run(produce(bootstrap, records(shuffled)))
    expected = reference(events, ch, t)

    assert expected["15m"]["csat"]["value"] == 0.6
    assert expected["15m"]["nps"]["value"] == 23.0

    def settled() -> bool:
        # each input partition's part of a batch commits on its own: wait for all of them
        samples = worker.metrics()
        return (
            metric_value(samples, "cx_contacts", channel=ch, window="15m", kind="chat") == 12
            and metric_value(samples, "cx_csat_responses", channel=ch, window="15m") == 100
            and metric_value(samples, "cx_contacts", channel=ch, window="15m", kind="ticket") == 20
            and metric_value(samples, "cx_resolved_contacts", channel=ch, window="15m")
            == expected["15m"]["fcr"]["n"]
            and metric_value(samples, "cx_open_tickets", channel=ch) == 5
        )

    worker.wait_until(settled, 60, "all seed events in /metrics")
    samples = worker.metrics()
    exp = expected["15m"]
    checks = {
        ("cx_csat_ratio", ()): exp["csat"]["value"],
        ("cx_csat_responses", ()): exp["csat"]["n"],
        ("cx_nps_score", ()): exp["nps"]["value"],
        ("cx_nps_responses", ()): exp["nps"]["n"],
        ("cx_ces_agree_ratio", ()): exp["ces"]["value"],
        ("cx_ces_average", ()): exp["ces"]["mean"],
        ("cx_ces_responses", ()): exp["ces"]["n"],
        ("cx_fcr_ratio", ()): exp["fcr"]["value"],
        ("cx_resolved_contacts", ()): exp["fcr"]["n"],
        ("cx_abandoned_ratio", ()): exp["abandoned"]["value"],
        ("cx_first_response_seconds", (("clock", "calendar"), ("kind", "ticket"), ("quantile", "0.5"))): exp[
            "first_response_seconds"
        ]["p50"],
        ("cx_first_response_seconds", (("clock", "calendar"), ("kind", "ticket"), ("quantile", "0.9"))): exp[
            "first_response_seconds"
        ]["p90"],
        ("cx_first_response_seconds", (("clock", "calendar"), ("kind", "chat"), ("quantile", "0.5"))): exp[
            "chat_first_response_seconds"
        ]["p50"],
        ("cx_resolution_seconds", (("clock", "calendar"), ("quantile", "0.9"))): exp["resolution_seconds"][
            "p90"
        ],
        ("cx_chat_wait_seconds", (("quantile", "0.5"),)): exp["chat_wait_seconds"]["p50"],
        ("cx_sla_attainment_ratio", (("target", "first_response"), ("kind", "ticket"))): exp["sla"][
            "first_response"
        ]["value"],
        ("cx_sla_attainment_ratio", (("target", "first_response"), ("kind", "chat"))): exp["sla"][
            "chat_first_response"
        ]["value"],
        ("cx_sla_attainment_ratio", (("target", "resolution"), ("kind", "ticket"))): exp["sla"]["resolution"][
            "value"
        ],
        ("cx_contacts", (("kind", "ticket"),)): exp["volume"]["tickets"],
    }
    for (name, extra), value in checks.items():
        assert value is not None, name
        got = metric_value(samples, name, channel=ch, window="15m", **dict(extra))
        assert got == pytest.approx(value), name
    assert metric_value(samples, "cx_open_tickets", channel=ch) == exp["open_tickets"] == 5

    # cx.metrics snapshots and the JSON API carry the very same objects.
    def api_settled() -> bool:
        found = {snap["window"]: without_as_of(snap) for snap in worker.scores(channel=ch)}
        return found == {window: without_as_of(snap) for window, snap in expected.items()}

    worker.wait_until(api_settled, 30, "the API to show the settled snapshots of every window")
    (snap,) = worker.scores(channel=ch, window="1h")
    assert without_as_of(snap) == without_as_of(expected["1h"])

    def published() -> bool:
        records = asyncio.run(consume_all(bootstrap, "cx.metrics"))
        latest = {r.key.decode(): orjson.loads(r.value) for r in records}
        return all(
            without_as_of(latest.get(f"{ch}/{window}", {})) == without_as_of(snap)
            for window, snap in expected.items()
        )

    worker.wait_until(published, 30, "cx.metrics to carry the settled snapshot of every window")


def test_empty_windows_are_absent_not_zero(worker: WorkerProcess, bootstrap: str) -> None:
    ch = channel("absent")
    ev = survey("csat", 4, now_ms(), ch)
    asyncio.run(produce(bootstrap, records([("cx.surveys", ev)])))
    worker.wait_until(
        lambda: metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="15m") == 1,
        30,
        "survey",
    )
    samples = worker.metrics()
    for name in ("cx_fcr_ratio", "cx_nps_score", "cx_ces_average", "cx_abandoned_ratio"):
        assert metric_value(samples, name, channel=ch, window="15m") is None, name
    p90 = {"channel": ch, "window": "15m", "kind": "ticket", "clock": "calendar", "quantile": "0.9"}
    assert metric_value(samples, "cx_first_response_seconds", **p90) is None
    (snap,) = worker.scores(channel=ch, window="15m") or [None]
    if snap is not None:  # the API view may lag a second behind /metrics
        assert snap["nps"] == {"value": None, "n": 0, "ci95": None, "promoters": 0, "detractors": 0}


def test_end_to_end_latency_to_metrics(
    worker: WorkerProcess, bootstrap: str, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Produce one event and time until /metrics shows it (the figure the README reports)."""
    ch = channel("latency")
    timings = []
    for i in range(5):
        ev = survey("csat", 5, now_ms(), ch)
        start = time.perf_counter()
        asyncio.run(produce(bootstrap, records([("cx.surveys", ev)])))
        worker.wait_until(
            lambda i=i: (
                metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="15m") == i + 1
            ),
            30,
            "the event in /metrics",
        )
        timings.append(time.perf_counter() - start)
    record_property("e2e_latency_seconds", timings)
    with capsys.disabled():
        print(f"\n  end-to-end produce → /metrics: {', '.join(f'{x * 1000:.0f} ms' for x in timings)}")


def test_consumer_lag_and_data_age_are_exported(worker: WorkerProcess, bootstrap: str) -> None:
    """Operators see how far behind the worker is and how fresh its data is; lag drains."""
    ch = channel("latency")
    burst = [("cx.surveys", survey("nps", 9, now_ms(), ch)) for _ in range(10_000)]
    asyncio.run(produce(bootstrap, records(burst)))

    def lag_series() -> dict[str, float]:
        return {k: v for k, v in worker.metrics().items() if k.startswith("cx_consumer_lag{")}

    # A burst of 10,000 events takes the worker seconds: the lag shows it, then drains.
    worker.wait_until(lambda: sum(lag_series().values()) > 0, 30, "the burst to show as consumer lag")

    drained = worker.wait_until(
        lambda: (found := lag_series()) and all(v == 0 for v in found.values()) and found,
        60,
        "the consumer lag to drain to 0",
    )
    assert {
        t for t in ("cx.tickets", "cx.chats", "cx.surveys") if any(f'topic="{t}"' in k for k in drained)
    } == {
        "cx.tickets",
        "cx.chats",
        "cx.surveys",
    }
    age = metric_value(worker.metrics(), "cx_data_age_seconds")
    assert age is not None and 0 <= age < 5
