"""Prometheus exposition: SPEC §6 names, bounded labels, absent when n = 0.

Score gauges are rendered at scrape time from the snapshots of the channels
this worker owns, so several workers scraped together give each series once
and a scrape always shows the newest figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_app.core.queues import is_queue, queue_name

OUTCOMES = ("accepted", "duplicate", "dead_letter")
# Counters without their `<name>_created` gauges: promtool flags them, and nothing
# here needs a counter's creation time (a restart shows in `process_start_time_seconds`).
disable_created_metrics()  # type: ignore[no-untyped-call]
SnapshotSource = Callable[[], Iterable[dict[str, Any]]]

#: (metric name, help, path into the snapshot, value key)
_SHARES = (
    ("cx_csat_ratio", "Share of CSAT responses in the top two boxes", "csat", "value"),
    ("cx_csat_responses", "CSAT responses in the window", "csat", "n"),
    ("cx_nps_score", "Net Promoter Score (-100..100)", "nps", "value"),
    ("cx_nps_responses", "NPS responses in the window", "nps", "n"),
    ("cx_ces_agree_ratio", "Share of CES responses agreeing the issue was easy", "ces", "value"),
    ("cx_ces_average", "Mean CES score", "ces", "mean"),
    ("cx_ces_responses", "CES responses in the window", "ces", "n"),
    (
        "cx_fcr_ratio",
        "First-contact resolution: share of resolved contacts resolved first time",
        "fcr",
        "value",
    ),
    ("cx_resolved_contacts", "Resolved contacts (tickets and chats) in the window", "fcr", "n"),
    (
        "cx_abandoned_ratio",
        "Share of ended chats the customer left before an agent joined",
        "abandoned",
        "value",
    ),
    (
        "cx_contained_ratio",
        "Share of ended chats resolved by self-service (a bot) with no agent",
        "contained",
        "value",
    ),
    (
        "cx_service_level_ratio",
        "Share of chats answered within the service-level threshold among answered and abandoned"
        " (short abandons left out)",
        "service_level",
        "value",
    ),
    (
        "cx_survey_response_ratio",
        "Share of the surveys offered in the window that were answered (so far)",
        "response_rate",
        "value",
    ),
    ("cx_surveys_offered", "Surveys offered (survey.offered) in the window", "response_rate", "n"),
)
#: (metric name, help, [(snapshot part, extra labels)]): first response is one
#: family with a `kind` label, tickets (hours) and chats (seconds) never mixed;
#: first response and resolution have a `clock` label: `calendar` (wall-clock time)
#: and `business` (the SLA clock: business hours where a calendar applies, and for
#: resolution without pending/on-hold time). Chats are live: calendar time only.
_DURATIONS: tuple[tuple[str, str, tuple[tuple[str, dict[str, str]], ...]], ...] = (
    (
        "cx_first_response_seconds",
        "First response time, tickets and chats apart (kind), calendar and SLA clock (clock)",
        (
            ("first_response_seconds", {"kind": "ticket", "clock": "calendar"}),
            ("first_response_business_seconds", {"kind": "ticket", "clock": "business"}),
            ("chat_first_response_seconds", {"kind": "chat", "clock": "calendar"}),
        ),
    ),
    (
        "cx_resolution_seconds",
        "Ticket resolution time, calendar and SLA clock (clock)",
        (
            ("resolution_seconds", {"clock": "calendar"}),
            ("resolution_business_seconds", {"clock": "business"}),
        ),
    ),
    ("cx_chat_wait_seconds", "Chat wait until an agent joined", (("chat_wait_seconds", {}),)),
)
#: (target label, kind label, snapshot key under `sla` / `sla_closed`)
_SLA = (
    ("first_response", "ticket", "first_response"),
    ("first_response", "chat", "chat_first_response"),
    ("resolution", "ticket", "resolution"),
)
#: Live queue (SPEC §4), per channel, not windowed: (name, help, path in the snapshot's `live`).
_LIVE = (
    ("cx_chats_waiting", "Chats waiting now: started, no agent yet, not ended", ("chats_waiting",)),
    (
        "cx_oldest_waiting_chat_seconds",
        "How long the longest-waiting chat has waited now",
        ("oldest_waiting_chat_seconds",),
    ),
    ("cx_oldest_open_ticket_seconds", "Age of the oldest open ticket now", ("oldest_open_ticket_seconds",)),
)


def series_labels(series: str) -> dict[str, str]:
    """The labels naming a series: `channel`, or for a queue series `queue` instead
    (SPEC §4 dimensions: a queue is reported across channels)."""
    if is_queue(series):
        return {"queue": queue_name(series)}
    return {"channel": series}


def _gauge(family: Metric, labels: dict[str, str], value: float) -> None:
    """A sample with its own label set: channel series carry `channel`, queue series
    `queue`, in the same family (the exposition format allows it)."""
    family.add_sample(family.name, labels, float(value))


class AlertFiring(Collector):
    """`cx_alert_firing{rule, channel|queue, window}`: 1 while an alert is firing, 0
    once it resolved (a configured rule's series stay, so `== 0` can be graphed)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str], float] = {}

    def set(self, rule: str, series: str, window: str, firing: bool) -> None:
        self.values[(rule, series, window)] = 1.0 if firing else 0.0

    def clear(self) -> None:
        self.values.clear()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("cx_alert_firing", "1 while an alert is firing")
        for (rule, series, window), value in sorted(self.values.items()):
            _gauge(family, {"rule": rule, **series_labels(series), "window": window}, value)
        yield family


class ScoreCollector(Collector):
    def __init__(self, source: SnapshotSource) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []  # dynamic: skip the registration-time collect

    def collect(self) -> Iterator[Metric]:
        labels = ["channel", "window"]
        families = {name: GaugeMetricFamily(name, text, labels=labels) for name, text, _, _ in _SHARES}
        # Percentile families are summaries over their window (SPEC §6): quantiles
        # plus _sum and _count, so PromQL can take the mean (_sum / _count).
        summaries = {name: Metric(name, text, "summary") for name, text, _ in _DURATIONS}
        sla = GaugeMetricFamily(
            "cx_sla_attainment_ratio",
            "Share within the SLA target; open tickets past their target count as breached",
            labels=[*labels, "target", "kind"],
        )
        sla_closed = GaugeMetricFamily(
            "cx_sla_attainment_closed_ratio",
            "Share within the SLA target among answered (first response) / resolved tickets only",
            labels=[*labels, "target", "kind"],
        )
        contacts = GaugeMetricFamily(
            "cx_contacts", "Tickets created / chats started in the window", labels=[*labels, "kind"]
        )
        open_tickets = GaugeMetricFamily("cx_open_tickets", "Open tickets now (backlog)", labels=["channel"])
        breaching = GaugeMetricFamily(
            "cx_sla_breaching_tickets",
            "Open tickets past their SLA target now (first response: no reply yet)",
            labels=["channel", "target"],
        )
        breach_soon = GaugeMetricFamily(
            "cx_sla_breach_soon_tickets",
            "Open tickets that will pass their SLA target within 15 minutes",
            labels=["channel", "target"],
        )
        live_families = {name: GaugeMetricFamily(name, text, labels=["channel"]) for name, text, _ in _LIVE}
        seen_channels: set[str] = set()
        for snap in self.source():
            dim = series_labels(snap["channel"])
            labelled = {**dim, "window": snap["window"]}
            for name, _, part, field in _SHARES:
                value = snap[part][field]
                if value is not None and snap[part]["n"] > 0:
                    _gauge(families[name], labelled, value)
            for name, _, parts in _DURATIONS:
                for part, extra in parts:
                    times = snap[part]
                    if not times["n"]:
                        continue
                    summary, series = summaries[name], {**labelled, **extra}
                    for quantile, field in (("0.5", "p50"), ("0.9", "p90")):
                        if times[field] is not None:
                            summary.add_sample(name, {**series, "quantile": quantile}, float(times[field]))
                    summary.add_sample(f"{name}_sum", series, float(times["sum"]))
                    summary.add_sample(f"{name}_count", series, float(times["n"]))
            for target, kind, part in _SLA:
                for family, section in ((sla, "sla"), (sla_closed, "sla_closed")):
                    share = snap[section][part]
                    if share["value"] is not None:
                        _gauge(family, {**labelled, "target": target, "kind": kind}, share["value"])
            for kind, field in (("ticket", "tickets"), ("chat", "chats")):
                count = snap["volume"][field]
                if count:
                    _gauge(contacts, {**labelled, "kind": kind}, count)
            if snap["channel"] not in seen_channels:
                seen_channels.add(snap["channel"])
                _gauge(open_tickets, dim, snap["open_tickets"])
                live = snap["live"]
                for target in ("first_response", "resolution"):
                    _gauge(breaching, {**dim, "target": target}, live["breaching"][target])
                    _gauge(breach_soon, {**dim, "target": target}, live["breach_soon"][target])
                for name, _, (field,) in _LIVE:
                    if live[field] is not None:  # no open ticket / waiting chat: no age
                        _gauge(live_families[name], dim, live[field])
        yield from families.values()
        yield from summaries.values()
        yield sla
        yield sla_closed
        yield contacts
        yield open_tickets
        yield breaching
        yield breach_soon
        yield from live_families.values()


def parse_samples(text: str) -> dict[str, float]:
    """Prometheus text exposition → {'name{labels}': value}, labels as exposed.

    For readers of our own `/metrics` (the bench, the tests), not a general parser.
    """
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


LagSource = Callable[[], Iterable[tuple[str, int, int]]]


class LagCollector(Collector):
    """Consumer lag of the input partitions this worker is assigned, read at scrape time."""

    def __init__(self, source: LagSource) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "cx_consumer_lag",
            "Input records not yet processed (assigned partitions)",
            labels=["topic", "partition"],
        )
        for topic, partition, behind in self.source():
            lag.add_metric([topic, str(partition)], float(behind))
        yield lag


class Instruments:
    """Counters and gauges that live in process memory (reset on restart, as Prometheus expects)."""

    def __init__(
        self,
        source: SnapshotSource,
        topics: Iterable[str] = (),
        reasons: Iterable[str] = (),
        rules: Iterable[tuple[str, str]] = (),
        lag: LagSource | None = None,
        data_age: Callable[[], float] | None = None,
        build: dict[str, str] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        if build is not None:
            Info(
                "cx_build",
                "The worker's version and the processing guarantee in force (probed: auto)",
                registry=self.registry,
            ).info(build)
        self.events = Counter(
            "cx_events", "Input records by outcome", ["topic", "outcome"], registry=self.registry
        )
        self.dead_letters = Counter(
            "cx_dead_letters", "Dead-lettered input records by reason", ["topic", "reason"],
            registry=self.registry,
        )  # fmt: skip
        self.alert_firing = AlertFiring()
        self.registry.register(self.alert_firing)
        self.alerts = Counter(
            "cx_alerts", "Alert state changes published to cx.alerts", ["rule", "severity", "state"],
            registry=self.registry,
        )  # fmt: skip
        self.partials = Counter(
            "cx_partials", "Per-channel partial aggregates flushed to the merge stage", registry=self.registry
        )
        self.incomplete = Counter(
            "cx_incomplete_contacts",
            "Tickets/chats closed whose start (ticket.created / chat.started) was never seen;"
            " left out of FCR, first response, resolution and SLA",
            ["kind"],
            registry=self.registry,
        )
        self.open_expired = Counter(
            "cx_open_state_expired",
            "Open tickets/chats dropped after STREAM_APP_OPEN_STATE_TTL without an event"
            " (they leave the backlog)",
            ["kind"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "cx_alert_notifications",
            "Alert messages POSTed to STREAM_APP_ALERT_WEBHOOK: sent, or failed after retries",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in ("sent", "failed"):
            self.notifications.labels(outcome)
        for kind in ("ticket", "chat"):
            self.incomplete.labels(kind)
            self.open_expired.labels(kind)
        self.registry.register(ScoreCollector(source))
        if lag is not None:
            self.registry.register(LagCollector(lag))
        if data_age is not None:
            age = Gauge(
                "cx_data_age_seconds",
                "Age of the newest data the figures include (since it was written to Kafka);"
                " grows while the broker or pipeline is down or behind",
                registry=self.registry,
            )
            age.set_function(data_age)
        # Every bounded label set starts at 0, so rate()/increase() see the first event
        # and dashboards show "none yet" instead of "no data".
        reasons = tuple(reasons)
        for topic in topics:
            for outcome in OUTCOMES:
                self.events.labels(topic, outcome)
            for reason in reasons:
                self.dead_letters.labels(topic, reason)
        for rule, severity in rules:
            for state in ("firing", "resolved"):
                self.alerts.labels(rule, severity, state)
