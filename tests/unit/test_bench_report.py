"""The bench report: every throughput row as a share of the same run's limit, and the
Quix Streams peer row (its record mapping is pure)."""

from __future__ import annotations

from stream_app.bench import Report, format_report
from stream_app.bench_quix import csat_fields


def report(**changes: object) -> Report:
    figures: dict[str, object] = {
        "broker": "Apache Kafka 4.3.1",
        "events": 100_000,
        "mix": {"cx.chats": 0.25, "cx.surveys": 0.15, "cx.tickets": 0.6},
        "produce_events_per_s": 90_000,
        "limit_events_per_s": 200_000,
        "baseline_events_per_s": 2_000,
        "service_events_per_s": 50_000,
        "service_seconds": 2.0,
        "intake_seconds": 1.5,
        "service_cpu_seconds": 1.8,
        "latency_offered_events_per_s": 5000,
        "latency_p50_ms": 300.0,
        "latency_p99_ms": 600.0,
        "latency_probes": 200,
        "peak_rss_mb": 200.0,
        "rss_mb_at": [(5000, 120.0)],
        "service_vs_limit": 0.25,
        "service_vs_baseline": 25.0,
        "store": "rocksdb://",
    }
    figures.update(changes)
    return Report(**figures)  # type: ignore[arg-type]


def test_rows_show_their_share_of_the_limit() -> None:
    text = format_report(report())
    service = next(line for line in text.splitlines() if "3. service" in line)
    baseline = next(line for line in text.splitlines() if "2. baseline" in line)
    assert "25.0% of limit" in service  # 50,000 / 200,000
    assert "1.0% of limit" in baseline  # 2,000 / 200,000
    assert "quix" not in text  # not run: no row, no ratio
    assert "worker CPU 1.8 s, 18 µs/event" in service  # 1.8 s over 100,000 events


def test_the_quix_row_and_ratio_when_it_ran() -> None:
    text = format_report(report(quix_events_per_s=20_000, service_vs_quix=2.5))
    quix = next(line for line in text.splitlines() if "6. quix" in line)
    assert "20,000 ev/s" in quix and "10.0% of limit" in quix
    assert "service/quix 2.50x" in text


def test_the_peer_counts_csat_responses_and_satisfied_ones_only() -> None:
    assert csat_fields(
        {"event_type": "survey.submitted", "survey": "csat", "score": 4, "channel": "email"}
    ) == {"channel": "email", "csat": 1, "satisfied": 1}
    assert (
        csat_fields({"event_type": "survey.submitted", "survey": "csat", "score": 3, "channel": "email"})[
            "satisfied"
        ]
        == 0
    )
    assert csat_fields(
        {"event_type": "survey.submitted", "survey": "nps", "score": 10, "channel": "chat"}
    ) == {
        "channel": "chat",
        "csat": 0,
        "satisfied": 0,
    }
    assert csat_fields({"event_type": "ticket.created", "channel": "phone"})["csat"] == 0


def test_a_peer_that_failed_says_why_instead_of_a_row() -> None:
    text = format_report(report(quix_error="quix stopped (exit 1): KeyError: 'retention.ms'"))
    assert "6. quix      not measured: quix stopped (exit 1)" in text
    assert "service/quix" not in text


def test_a_skipped_baseline_says_so_instead_of_zero() -> None:
    text = format_report(report(baseline_events_per_s=0, service_vs_baseline=0.0))
    baseline = next(line for line in text.splitlines() if "2. baseline" in line)
    assert "not run" in baseline and " 0 ev/s" not in baseline
    assert "service/baseline" not in text


def test_the_service_row_says_when_stage_1_had_counted_everything() -> None:
    service = next(line for line in format_report(report()).splitlines() if "3. service" in line)
    assert "(2.0 s; all counted by stage 1 after 1.5 s;" in service


def test_the_header_says_whether_the_named_queues_are_reported() -> None:
    reported = format_report(report(queues=10)).splitlines()[0]
    named_only = format_report(report(queues=10, queues_reported=False)).splitlines()[0]
    assert "9 channels, 10 queues, store" in reported
    assert "9 channels, 10 queues (named, not reported), store" in named_only
    assert "queues" not in format_report(report()).splitlines()[0]
