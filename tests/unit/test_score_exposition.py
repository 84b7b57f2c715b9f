"""The score families of /metrics, rendered as text straight from the snapshots
(`ScoreExposition`), are byte for byte what prometheus_client's own families give
for the same snapshots (how they were rendered until 2026-12)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from stream_app.bench import make_events
from stream_app.core.intake import Intake
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.queues import Queues, is_queue, queue_name
from stream_app.core.replay import Replay
from stream_app.core.timeutil import parse_rfc3339_ms
from stream_app.core.windows import Timeline
from stream_app.metrics import _DURATIONS, _LIVE, _SHARES, _SLA, ScoreExposition
from tests.unit.conftest import _SCHEMAS, CHANNELS, WINDOWS

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")


class _Reference(Collector):
    """The score families through prometheus_client objects."""

    def __init__(self, snapshots: list[dict[str, Any]]) -> None:
        self.snapshots = snapshots

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=labels)

        shares = {name: gauge(name, text, []) for name, text, _, _ in _SHARES}
        summaries = {name: Metric(name, text, "summary") for name, text, _ in _DURATIONS}
        sla = gauge(
            "cx_sla_attainment_ratio",
            "Share within the SLA target; open tickets past their target count as breached",
            [],
        )
        closed = gauge(
            "cx_sla_attainment_closed_ratio",
            "Share within the SLA target among answered (first response) / resolved tickets only",
            [],
        )
        judged = gauge(
            "cx_sla_contacts",
            "Contacts judged against the SLA target in the window (the n of cx_sla_attainment_ratio:"
            " answered / resolved ones and open tickets past their target)",
            [],
        )
        contacts = gauge("cx_contacts", "Tickets created / chats started in the window", [])
        open_tickets = gauge("cx_open_tickets", "Open tickets now (backlog)", [])
        breaching = gauge(
            "cx_sla_breaching_tickets",
            "Open tickets past their SLA target now (first response: no reply yet)",
            [],
        )
        soon = gauge(
            "cx_sla_breach_soon_tickets", "Open tickets that will pass their SLA target within 15 minutes", []
        )
        live_families = {name: gauge(name, text, []) for name, text, _ in _LIVE}
        seen = set()
        for snap in self.snapshots:
            series = snap["channel"]
            dim = {"queue": queue_name(series)} if is_queue(series) else {"channel": series}
            labelled = {**dim, "window": snap["window"]}
            for name, _, part, field in _SHARES:
                if snap[part][field] is not None and snap[part]["n"] > 0:
                    shares[name].add_sample(name, labelled, float(snap[part][field]))
            for name, _, parts in _DURATIONS:
                for part, extra in parts:
                    times = snap[part]
                    if not times["n"]:
                        continue
                    labels = {**labelled, **extra}
                    for quantile, field in (("0.5", "p50"), ("0.9", "p90")):
                        if times[field] is not None:
                            summaries[name].add_sample(
                                name, {**labels, "quantile": quantile}, float(times[field])
                            )
                    summaries[name].add_sample(f"{name}_sum", labels, float(times["sum"]))
                    summaries[name].add_sample(f"{name}_count", labels, float(times["n"]))
            for target, kind, part in _SLA:
                for family, section in ((sla, "sla"), (closed, "sla_closed")):
                    if snap[section][part]["value"] is not None:
                        family.add_sample(
                            family.name,
                            {**labelled, "target": target, "kind": kind},
                            float(snap[section][part]["value"]),
                        )
                if snap["sla"][part]["n"]:
                    judged.add_sample(
                        judged.name,
                        {**labelled, "target": target, "kind": kind},
                        float(snap["sla"][part]["n"]),
                    )
            for kind, field in (("ticket", "tickets"), ("chat", "chats")):
                if snap["volume"][field]:
                    contacts.add_sample(
                        "cx_contacts", {**labelled, "kind": kind}, float(snap["volume"][field])
                    )
            if series in seen:
                continue
            seen.add(series)
            open_tickets.add_sample("cx_open_tickets", dim, float(snap["open_tickets"]))
            live = snap["live"]
            for target in ("first_response", "resolution"):
                breaching.add_sample(
                    breaching.name, {**dim, "target": target}, float(live["breaching"][target])
                )
                soon.add_sample(soon.name, {**dim, "target": target}, float(live["breach_soon"][target]))
            for name, _, (field,) in _LIVE:
                if live[field] is not None:
                    live_families[name].add_sample(name, dim, float(live[field]))
        yield from shares.values()
        yield from summaries.values()
        yield from (sla, closed, judged, contacts, open_tickets, breaching, soon)
        yield from live_families.values()


def _snapshots() -> list[dict[str, Any]]:
    """Every figure of the bench's traffic (channels, queues, `all`) in every window."""
    queues = Queues(frozenset({"q0", "q1", "q2"}))
    replay = Replay(Intake(_SCHEMAS, CHANNELS, Timeline(WINDOWS), LifecycleRules(), queues=queues), NOW)
    for topic, _, value in make_events(3000, 11, NOW, queues=4).records:
        replay.feed(topic, value, NOW)
    return replay.snapshots(NOW)


def test_the_score_text_is_what_prometheus_client_writes() -> None:
    snapshots = _snapshots()
    assert any(is_queue(s["channel"]) for s in snapshots)
    registry = CollectorRegistry()
    registry.register(_Reference(snapshots))
    expected = generate_latest(registry).decode()
    assert ScoreExposition(lambda: snapshots).render() == expected
    assert expected.count("\n") > 1000  # many figures of every kind were compared


def test_label_values_are_escaped() -> None:
    snap = _snapshots()[0]
    odd = {**snap, "channel": 'a"b\\c\nd'}
    text = ScoreExposition(lambda: [odd]).render()
    channels = {
        sample.labels.get("channel")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert channels == {'a"b\\c\nd'}


def test_the_text_is_kept_while_the_source_returns_the_same_snapshots() -> None:
    """A scrape renders again only when the source hands over another collection (the
    worker's snapshots are rebuilt after a change, and once a second)."""
    snapshots = _snapshots()
    current = [snapshots]
    exposition = ScoreExposition(lambda: current[0])
    first = exposition.render()
    rated = next(i for i, snap in enumerate(snapshots) if snap["csat"]["n"] > 0)
    snapshots[rated] = {**snapshots[rated], "csat": {**snapshots[rated]["csat"], "value": 0.123456}}
    assert exposition.render() is first  # changed in place: the same collection, not rendered again
    current[0] = list(snapshots)  # a rebuilt collection: rendered again
    second = exposition.render()
    assert second != first
    assert "0.123456" in second
