"""Kafka with SASL/SCRAM: the worker works with the right credentials and stops at
start with one clear line (and no password) with wrong ones.

Runs its own Apache Kafka (scripts/kafka-local --sasl-scram, a SASL_PLAINTEXT
listener) whichever broker the rest of the session uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.factories import encode, survey
from tests.integration.harness import RUN, WorkerProcess, channel, metric_value, run_sync

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka-local"
USER, PASSWORD = "cx-worker", f"scram-{RUN}-secret"


@pytest.fixture(scope="module")
def sasl_kafka() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="cx-sasl-kafka-")
    env = {**os.environ, "KAFKA_LOCAL_SASL_USER": USER, "KAFKA_LOCAL_SASL_PASSWORD": PASSWORD}
    started = subprocess.run(
        [str(SCRIPT), "start", "--sasl-scram", "--dir", directory], env=env, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(SCRIPT), "stop", "--dir", directory], capture_output=True)


def sasl_env(password: str) -> dict[str, str]:
    return {
        "STREAM_APP_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "STREAM_APP_SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAM_APP_SASL_USERNAME": USER,
        "STREAM_APP_SASL_PASSWORD": password,
    }


async def produce_sasl(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=USER,
        sasl_plain_password=PASSWORD,
    )
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def test_worker_with_right_credentials_works(sasl_kafka: str, workdir: Path) -> None:
    ch = channel("probe")
    worker = WorkerProcess(sasl_kafka, workdir, f"cx-sasl-{RUN}", **sasl_env(PASSWORD))
    worker.start()
    try:
        # Faust opens the web server once its (empty) tables are recovered: on a slow
        # machine running two Kafka brokers that took more than the two minutes below.
        worker.wait_until(worker.health, 180, "the worker's web server")
        answer = survey("csat", 5, int(time.time() * 1000), ch, response_id=f"sasl-{RUN}")
        run_sync(produce_sasl(sasl_kafka, [("cx.surveys", answer["response_id"].encode(), encode(answer))]))
        worker.wait_until(
            lambda: metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="15m") == 1,
            120,
            "a survey through the SASL listener",
        )
    finally:
        worker.stop()
    assert PASSWORD not in worker.log_path.read_text(errors="replace")


def test_wrong_credentials_stop_start_up_with_one_clear_line(sasl_kafka: str, workdir: Path) -> None:
    env: dict[str, Any] = {
        **os.environ,
        "STREAM_APP_BROKER": sasl_kafka,
        "STREAM_APP_DATA_DIR": str(workdir / f"data-sasl-wrong-{RUN}"),
        **sasl_env("not-the-password"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "stream_app", "worker"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("stream-app:")]
    assert len(lines) == 1, done.stderr
    assert "STREAM_APP_SASL_USERNAME/STREAM_APP_SASL_PASSWORD: the broker refused them" in lines[0]
    assert "not-the-password" not in done.stderr + done.stdout
