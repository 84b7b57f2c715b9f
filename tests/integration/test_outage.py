"""Broker outage: Apache Kafka stops mid-stream for 20 s and comes back.

The worker must ride it out with no manual action: /metrics keeps answering
(with `cx_data_age_seconds` showing how stale the figures are), and once the
broker is back and the stream drained, every figure equals the pure core's.

Runs its own Apache Kafka (scripts/kafka-local), stopped and restarted with its
data (`start --keep-data`), whichever broker the rest of the session uses.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.integration.exactness import bench_stream, progress, settle, total
from tests.integration.harness import RUN, LocalKafka, WorkerProcess, metric_value, produce, run_sync

pytestmark = [pytest.mark.integration, pytest.mark.fault]
EVENTS = int(os.environ.get("CX_OUTAGE_EVENTS", "100000"))
OUTAGE_S = 20


def test_a_20_second_broker_outage_is_ridden_out_exactly(
    own_kafka: LocalKafka, workdir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = bench_stream("outage", EVENTS, seed=7)
    expected = total(stream)
    bootstrap = own_kafka.bootstrap
    worker = WorkerProcess(
        bootstrap,
        workdir,
        f"cx-outage-{RUN}",
        STREAM_APP_STORE="rocksdb://",
        **stream.env,
    )
    worker.start()
    try:
        half = len(stream.records) // 2
        worker.wait_until(lambda: worker.get("/healthz"), 120, "the worker's web server")
        run_sync(produce(bootstrap, stream.records[:half]))
        worker.wait_until(lambda: progress([worker], stream) >= 0.2 * expected, 300, "20% counted")

        log_lines_before = len(worker.log_path.read_text(errors="replace").splitlines())
        own_kafka.stop()
        down_at = time.monotonic()
        ages = []
        ready = []
        while time.monotonic() - down_at < OUTAGE_S:
            samples = worker.metrics()  # must keep answering
            ages.append(metric_value(samples, "cx_data_age_seconds") or 0.0)
            ready.append(worker.health()["ready"])
            time.sleep(1)
        log_lines = len(worker.log_path.read_text(errors="replace").splitlines()) - log_lines_before
        own_kafka.restart()
        back_after = time.monotonic() - down_at

        run_sync(produce(bootstrap, stream.records[half:]))
        result = settle([worker], stream)
        assert worker.process is not None and worker.process.poll() is None, "the worker must not exit"
        back_ready = worker.wait_until(lambda: worker.health()["ready"], 60, "ready again")
    finally:
        worker.stop()
    with capsys.disabled():
        print(
            f"\n  outage: broker down {back_after:.0f} s, /metrics answered {len(ages)}/{len(ages)} scrapes,"
            f" data age up to {max(ages):.0f} s, /healthz not ready in {ready.count(False)} of them,"
            f" {log_lines} log lines; {EVENTS:,} events: lost {result.lost},"
            f" double-counted {result.double}"
        )
    assert False in ready and back_ready, ready  # /healthz said so, and recovered
    assert log_lines < 400, f"{log_lines} log lines in {OUTAGE_S} s of outage"
    assert max(ages) >= OUTAGE_S / 2, ages  # the figures were marked stale
    assert result.equal, f"lost {result.lost}, double {result.double}: {result.differing[:10]}"
