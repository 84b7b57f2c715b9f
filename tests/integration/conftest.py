"""Session fixtures: one broker and one shared worker for the whole integration run.

The embedded broker (tansu) is the default; set STREAM_APP_TEST_BROKER=host:port
to run against another broker, e.g. Apache Kafka from scripts/kafka-local.
Every test uses channels of its own (see harness.channel), so one shared worker
serves them all and a broker's older data cannot leak into an assertion.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.embedded_broker import EmbeddedBroker
from tests.factories import encode, survey
from tests.integration.harness import (
    GRAFANA_QUEUE,
    RUN,
    LocalKafka,
    WorkerProcess,
    channel,
    metric_value,
    produce,
    run_sync,
)

OUTPUT = Path(os.environ.get("STREAM_APP_TEST_OUTPUT", "test-output"))


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    external = os.environ.get("STREAM_APP_TEST_BROKER")
    if external:
        yield external.split("://", 1)[-1]
        return
    OUTPUT.mkdir(parents=True, exist_ok=True)
    os.environ["CX_TEST_BROKER_KIND"] = "tansu"  # for the tests; workers probe the broker themselves
    with EmbeddedBroker(log_path=str(OUTPUT / f"tansu-{RUN}.log")) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def workdir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


def _wait_ready(worker: WorkerProcess, bootstrap: str, probe_channel: str) -> None:
    """Ready = a probe event went all the way through both stages into /metrics."""
    import time

    now = int(time.time() * 1000)
    probe = survey("csat", 5, now, probe_channel, response_id=f"probe-{probe_channel}-{worker.port}")
    run_sync(produce(bootstrap, [("cx.surveys", probe["response_id"].encode(), encode(probe))]))
    worker.wait_until(
        lambda: (
            (metric_value(worker.metrics(), "cx_csat_responses", channel=probe_channel, window="15m") or 0)
            >= 1
        ),
        timeout=150,
        what="the worker to join its group and process a probe event",
    )


@pytest.fixture(scope="session")
def worker(bootstrap: str, workdir: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(bootstrap, workdir, f"cx-test-{RUN}", STREAM_APP_QUEUES=GRAFANA_QUEUE)
    process.start()
    try:
        _wait_ready(process, bootstrap, channel("probe"))
        yield process
    finally:
        process.stop()


@pytest.fixture
def start_worker(bootstrap: str, workdir: Path) -> Iterator[object]:
    """Factory for extra workers (restart, alert tests), stopped when the test ends.

    They have app ids of their own but publish to the same `cx.metrics`; left running
    they would keep overwriting the shared worker's snapshots in later tests.
    """
    started: list[WorkerProcess] = []

    def start(app_id: str, probe_channel: str, **env: str) -> WorkerProcess:
        process = WorkerProcess(bootstrap, workdir, app_id, **env)
        process.start()
        started.append(process)
        _wait_ready(process, bootstrap, probe_channel)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def quiet_bootstrap(bootstrap: str) -> Iterator[str]:
    """A broker with nothing else on it, for a fault test that measures a group of
    workers: on the embedded broker a fresh one, an external broker is shared.

    tansu keeps the session's records in memory and slows down as they pile up: late
    in a full run (after ~40 tests) its produce acknowledgements took 8 s, the
    workers' 6 s group sessions expired, their group rebalanced ten times in two
    minutes, and the rebalance test ran out of time while still catching up (CI,
    three runs). The crash test met the same on 2026-12-02: its last worker's sends
    took about a second each and it was still catching up when `settle` gave up after
    300 s; alone, on a fresh broker, it passes in two minutes. Every worker in a fresh
    group also reads the whole session's input topics from the start. On Apache Kafka
    neither happens.
    """
    if os.environ.get("CX_TEST_BROKER_KIND") != "tansu":
        yield bootstrap
        return
    with EmbeddedBroker(log_path=str(OUTPUT / f"tansu-quiet-{RUN}.log")) as broker:
        yield broker.bootstrap


@pytest.fixture
def own_kafka() -> Iterator[LocalKafka]:
    """An Apache Kafka for one test (outage, overload): stopped or flooded without
    disturbing the session's broker and shared worker."""
    kafka = LocalKafka()
    try:
        yield kafka
    finally:
        kafka.close()


#: Fixtures that start an Apache Kafka of the test's own (`sasl_kafka`: test_security.py).
OWN_BROKER_FIXTURES = frozenset({"own_kafka", "sasl_kafka"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fault tests last: they put 100,000s of events on the session's broker, which
    every worker started afterwards with a fresh group reads from the beginning.

    A test on an Apache Kafka of its own (`OWN_BROKER_FIXTURES`) runs the same whichever
    broker the session uses: it is `broker_incidental` (CI runs it once, in the Kafka leg)."""
    for item in items:
        if OWN_BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker_incidental)
    items.sort(key=lambda item: item.get_closest_marker("fault") is not None)
