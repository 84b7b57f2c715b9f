"""A first run that just works: `stream-app worker` with only the broker address
set, on whichever broker the suite runs (Apache Kafka or the embedded one).

The worker probes what the broker can do (stream_app/kafka/probe.py): exactly-once
where transactions work, at-least-once where they do not; it says which at start,
in /healthz and in `cx_build_info`. Asking for exactly-once of a broker without
transactions stops start-up with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.factories import now_ms, records, survey
from tests.integration.harness import WorkerProcess, metric_value, produce, run_sync

pytestmark = pytest.mark.integration


def expected_guarantee() -> str:
    """What the probe must find on the broker the suite runs on (set by conftest)."""
    return "exactly_once" if os.environ.get("CX_TEST_BROKER_KIND", "kafka") == "kafka" else "at_least_once"


#: What may be set besides STREAM_APP_BROKER: where to listen and keep files, and
#: an app id that keeps this worker's groups apart from the other tests'.
ISOLATION = ("STREAM_APP_BROKER", "STREAM_APP_WEB_PORT", "STREAM_APP_APP_ID", "STREAM_APP_DATA_DIR")


def bare_worker(bootstrap: str, workdir: Path, **env: str) -> WorkerProcess:
    worker = WorkerProcess(bootstrap, workdir, f"cx-first-run-{uuid.uuid4().hex[:6]}", **env)
    worker.env = {
        k: v for k, v in worker.env.items() if not k.startswith("STREAM_APP_") or k in ISOLATION or k in env
    }
    return worker


def test_a_worker_with_only_the_broker_set_runs_with_the_best_guarantee_the_broker_has(
    bootstrap: str, workdir: Path
) -> None:
    worker = bare_worker(bootstrap, workdir)
    assert not any(k.startswith("STREAM_APP_") and k not in ISOLATION for k in worker.env)
    worker.start()
    try:
        health = worker.wait_until(lambda: worker.health()["ready"] and worker.health(), 120, "ready")
        assert health["processing_guarantee"] == expected_guarantee()
        assert health["waiting_for"] is None
        t = now_ms()
        mine = [("cx.surveys", survey("csat", 5, t - i * 1000, "chat")) for i in range(20)]
        before = (
            metric_value(worker.metrics(), "cx_events_total", topic="cx.surveys", outcome="accepted") or 0
        )
        run_sync(produce(bootstrap, records(mine)))
        worker.wait_until(
            lambda: (
                (
                    metric_value(worker.metrics(), "cx_events_total", topic="cx.surveys", outcome="accepted")
                    or 0
                )
                >= before + len(mine)
            ),
            120,
            "our surveys accepted",
        )
        worker.wait_until(
            lambda: (
                (metric_value(worker.metrics(), "cx_csat_responses", channel="chat", window="15m") or 0)
                >= len(mine)
            ),
            60,
            "our surveys in the chat CSAT",
        )
        samples = worker.metrics()
        build = [k for k in samples if k.startswith("cx_build_info{")]
        assert len(build) == 1 and f'processing_guarantee="{expected_guarantee()}"' in build[0], build
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    announced = [line for line in log.splitlines() if "processing guarantee" in line]
    assert len(announced) == 1 and expected_guarantee() in announced[0], announced
    assert "Unclosed" not in log


def test_exactly_once_is_refused_in_one_line_where_the_broker_has_no_transactions(
    bootstrap: str, workdir: Path
) -> None:
    worker = bare_worker(bootstrap, workdir, STREAM_APP_PROCESSING_GUARANTEE="exactly_once")
    if expected_guarantee() == "exactly_once":  # Apache Kafka has transactions: it starts
        worker.start()
        try:
            health = worker.wait_until(lambda: worker.health()["ready"] and worker.health(), 120, "ready")
            assert health["processing_guarantee"] == "exactly_once"
        finally:
            worker.stop()
        return
    done = subprocess.run(
        [sys.executable, "-m", "stream_app", "worker"],
        env=worker.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "STREAM_APP_PROCESSING_GUARANTEE=exactly_once needs Kafka transactions" in lines[0]
