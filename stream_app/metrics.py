"""Prometheus exposition: SPEC §6 names, bounded labels, absent when n = 0.

Score gauges are rendered at scrape time from the snapshots of the channels
this worker owns, so several workers scraped together give each series once
and a scrape always shows the newest figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
    ("cx_chats_ended", "Chats ended in the window (the n of abandoned and contained)", "abandoned", "n"),
    (
        "cx_service_level_ratio",
        "Share of chats answered within the service-level threshold among answered and abandoned"
        " (short abandons left out)",
        "service_level",
        "value",
    ),
    (
        "cx_service_level_chats",
        "Chats answered or abandoned in the window, short abandons left out (the n of service level)",
        "service_level",
        "n",
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


#: Families rendered from the snapshots, in exposition order: (name, type, help).
_SCORE_FAMILIES: tuple[tuple[str, str, str], ...] = (
    *((name, "gauge", text) for name, text, _, _ in _SHARES),
    *((name, "summary", text) for name, text, _ in _DURATIONS),
    (
        "cx_sla_attainment_ratio",
        "gauge",
        "Share within the SLA target; open tickets past their target count as breached",
    ),
    (
        "cx_sla_attainment_closed_ratio",
        "gauge",
        "Share within the SLA target among answered (first response) / resolved tickets only",
    ),
    (
        "cx_sla_contacts",
        "gauge",
        "Contacts judged against the SLA target in the window (the n of cx_sla_attainment_ratio:"
        " answered / resolved ones and open tickets past their target)",
    ),
    ("cx_contacts", "gauge", "Tickets created / chats started in the window"),
    ("cx_open_tickets", "gauge", "Open tickets now (backlog)"),
    (
        "cx_sla_breaching_tickets",
        "gauge",
        "Open tickets past their SLA target now (first response: no reply yet)",
    ),
    ("cx_sla_breach_soon_tickets", "gauge", "Open tickets that will pass their SLA target within 15 minutes"),
    *((name, "gauge", text) for name, text, _ in _LIVE),
)


_SLA_FAMILIES = (("cx_sla_attainment_ratio", "sla"), ("cx_sla_attainment_closed_ratio", "sla_closed"))


def label_value(value: str) -> str:
    """A label value escaped for the text exposition format (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    """A label set as exposed: sorted by name, as prometheus_client writes it."""
    return ",".join(f'{name}="{label_value(value)}"' for name, value in sorted(labels.items()))


def sample_value(value: float) -> str:
    """A sample value written as prometheus_client writes it (Go's float format)."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


class ScoreExposition:
    """The score families of `/metrics` (SPEC §6), rendered as exposition text
    straight from the snapshots.

    Through prometheus_client's collector (until 2026-12) a scrape built a sample
    object per value and escaped every label of every sample, ~2/3 of a scrape
    with 20 series; here a series' labels are escaped once and each sample is one
    formatted line. The rest of `/metrics` still comes from prometheus_client
    (`Instruments.exposition`).

    The text is kept for the snapshot collection it was rendered from: while the
    source returns that same object (the worker's snapshots are rebuilt when a
    merge batch changed them, and once a second), a scrape reuses the text.
    """

    def __init__(self, source: SnapshotSource) -> None:
        self.source = source
        #: (series, window) → its escaped label sets, built on first sight: a
        #: series' labels never change, and escaping them took a quarter of a scrape.
        self._window_labels: dict[tuple[str, str], _WindowLabels] = {}
        self._live_labels: dict[str, _LiveLabels] = {}
        #: The snapshot collection last rendered (held, so its identity is not reused) and its text.
        self._rendered: tuple[Iterable[dict[str, Any]], str] | None = None

    def _labels_of(self, series: str, window: str) -> _WindowLabels:
        found = self._window_labels.get((series, window))
        if found is None:
            if len(self._window_labels) > _LABEL_CACHE_LIMIT:  # agents come and go: stay bounded
                self._window_labels.clear()
            found = self._window_labels[(series, window)] = _WindowLabels(series, window)
        return found

    def _live_labels_of(self, series: str) -> _LiveLabels:
        found = self._live_labels.get(series)
        if found is None:
            if len(self._live_labels) > _LABEL_CACHE_LIMIT:
                self._live_labels.clear()
            found = self._live_labels[series] = _LiveLabels(series)
        return found

    def render(self) -> str:
        snapshots = self.source()
        if self._rendered is None or self._rendered[0] is not snapshots:
            self._rendered = (snapshots, self._render(snapshots))
        return self._rendered[1]

    def _render(self, snapshots: Iterable[dict[str, Any]]) -> str:
        lines: dict[str, list[str]] = {name: [] for name, _, _ in _SCORE_FAMILIES}

        def add(name: str, labels: str, value: float, family: str = "") -> None:
            lines[family or name].append(f"{name}{{{labels}}} {sample_value(value)}")

        seen: set[str] = set()
        for snap in snapshots:
            series = snap["channel"]
            labelled = self._labels_of(series, snap["window"])
            shared = labelled.shared
            for name, _, part, field in _SHARES:
                value = snap[part][field]
                if value is not None and snap[part]["n"] > 0:
                    add(name, shared, value)
            for name, part, quantiles, labels in labelled.durations:
                times = snap[part]
                if not times["n"]:
                    continue
                for field, quantile_labels in quantiles:
                    if times[field] is not None:
                        add(name, quantile_labels, times[field])
                add(f"{name}_sum", labels, times["sum"], name)
                add(f"{name}_count", labels, times["n"], name)
            for part, labels in labelled.sla:
                for name, section in _SLA_FAMILIES:
                    share = snap[section][part]
                    if share["value"] is not None:
                        add(name, labels, share["value"])
                if snap["sla"][part]["n"]:
                    add("cx_sla_contacts", labels, snap["sla"][part]["n"])
            for field, labels in labelled.contacts:
                if snap["volume"][field]:
                    add("cx_contacts", labels, snap["volume"][field])
            if series in seen:  # the live queue: once per series, not per window
                continue
            seen.add(series)
            live_labels = self._live_labels_of(series)
            only = live_labels.only
            add("cx_open_tickets", only, snap["open_tickets"])
            live = snap["live"]
            for target, labels in live_labels.targets:
                add("cx_sla_breaching_tickets", labels, live["breaching"][target])
                add("cx_sla_breach_soon_tickets", labels, live["breach_soon"][target])
            for name, _, (field,) in _LIVE:
                if live[field] is not None:  # no open ticket / waiting chat: no age
                    add(name, only, live[field])
        text = []
        for name, kind, help_text in _SCORE_FAMILIES:
            text.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
            if lines[name]:
                text.append("\n".join(lines[name]))
                text.append("\n")
        return "".join(text)


#: Label sets kept by `ScoreExposition` before it starts over (series × windows).
_LABEL_CACHE_LIMIT = 50_000


class _WindowLabels:
    """The escaped label sets of one series and window, as `ScoreExposition` writes them."""

    __slots__ = ("contacts", "durations", "shared", "sla")

    def __init__(self, series: str, window: str) -> None:
        labelled = {**series_labels(series), "window": window}
        self.shared = _labels(labelled)
        #: (family, snapshot part, ((p50|p90 field, its labels), ...), labels of _sum/_count)
        self.durations: list[tuple[str, str, tuple[tuple[str, str], ...], str]] = []
        for name, _, parts in _DURATIONS:
            for part, extra in parts:
                timed = {**labelled, **extra}
                quantiles = tuple(
                    (field, _labels({**timed, "quantile": quantile}))
                    for quantile, field in (("0.5", "p50"), ("0.9", "p90"))
                )
                self.durations.append((name, part, quantiles, _labels(timed)))
        self.sla = [
            (part, _labels({**labelled, "target": target, "kind": kind})) for target, kind, part in _SLA
        ]
        self.contacts = [
            (field, _labels({**labelled, "kind": kind}))
            for kind, field in (("ticket", "tickets"), ("chat", "chats"))
        ]


class _LiveLabels:
    """The escaped label sets of one series' live queue (not windowed)."""

    __slots__ = ("only", "targets")

    def __init__(self, series: str) -> None:
        dim = series_labels(series)
        self.only = _labels(dim)
        self.targets = [
            (target, _labels({**dim, "target": target})) for target in ("first_response", "resolution")
        ]


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
        self.scores = ScoreExposition(source)
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

    def exposition(self) -> bytes:
        """The whole `/metrics` text: prometheus_client's instruments, then the score
        families (`ScoreExposition`)."""
        return generate_latest(self.registry) + self.scores.render().encode()
