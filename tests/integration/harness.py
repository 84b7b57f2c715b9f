"""Real broker, real worker process, real outputs: the pieces integration tests share."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_app.config import DEFAULT_CHANNELS
from stream_app.metrics import parse_samples
from stream_app.topics import partitions_of

RUN = uuid.uuid4().hex[:6]
T = TypeVar("T")


def channel(name: str) -> str:
    """A channel only this test session uses, so a shared broker's history cannot leak in."""
    return f"{name}_{RUN}"


#: The queue the shared worker reports (STREAM_APP_QUEUES): the Grafana test's queue panels.
GRAFANA_QUEUE = f"grafana_q_{RUN}"

TEST_CHANNELS = [
    channel(n)
    for n in (
        "e2e",
        "dlq",
        "dup",
        "probe",
        "restart_rocksdb",
        "restart_memory",
        "absent",
        "latency",
        "alert",
        "alert_restart",
        "wb_a",
        "wb_b",
        "grafana",
        "promtool",
        "crash",
        "refused",
        "history",
        "webhook",
        "breach",
        "wb_sla",
        "business",
        "business_daily",
        "wb_queue",
        "wb_queue2",
        "relabel",
        "zendesk",
        "intercom",
        "connect_voice",
        "zendesk_backfill",
        "upgrade",
    )
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class WorkerProcess:
    """`python -m stream_app worker` in a child process, logs to a file."""

    def __init__(self, bootstrap: str, workdir: Path, app_id: str, **env: str) -> None:
        self.bootstrap = bootstrap
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"worker-{app_id}-{self.port}.log"
        self.env = {
            **os.environ,
            "STREAM_APP_BROKER": bootstrap,
            "STREAM_APP_WEB_PORT": str(self.port),
            "STREAM_APP_APP_ID": app_id,
            "STREAM_APP_DATA_DIR": str(workdir / f"data-{app_id}"),
            "STREAM_APP_CHANNELS": ",".join([*DEFAULT_CHANNELS, *TEST_CHANNELS]),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream_app", "worker"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def stop(self, timeout: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit (a crash)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: the process freezes (a GC pause, a VM freeze) until `resume`."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self, lines: int = 30) -> str:
        """The last `lines` warning, error and traceback lines of the log (for failure
        messages: CI keeps only the test output)."""
        if not self.log_path.exists():
            return ""
        found = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Traceback", "Error:"))
        ]
        return "\n".join(found[-lines:])

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            body: bytes = response.read()
            return body

    def metrics(self) -> dict[str, float]:
        """Prometheus text → {'name{labels}': value}, labels sorted as exposed."""
        return parse_samples(self.get("/metrics").decode())

    def scores(self, **query: str) -> list[dict[str, Any]]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        result: list[dict[str, Any]] = orjson.loads(self.get(f"/api/v1/scores?{qs}"))
        return result

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def owned_channels(self) -> set[str]:
        """The channels this worker owns now (its merge stage's partitions), from /healthz."""
        return set(self.health()["owned_channels"])

    def owned_queues(self) -> set[str]:
        """The queue series this worker owns now (`queue:<name>`), from /healthz."""
        return {f"queue:{q}" for q in self.health().get("owned_queues", [])}

    def health(self) -> dict[str, Any]:
        """/healthz as JSON, whether it answers 200 (ready) or 503 (not ready)."""
        try:
            body = self.get("/healthz")
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            body = exc.read()
        found: dict[str, Any] = orjson.loads(body)
        return found

    def lag(self) -> float:
        """Input records not yet processed, summed over its `cx_consumer_lag` series."""
        return lag_of(self.metrics())

    def settle(self, quiet: float = 3.0, timeout: float = 300) -> dict[str, float]:
        """Wait until lag is 0 and the `cx_events_total` counters stay unchanged for
        `quiet` seconds; return the metrics then.

        Lag alone can read 0 too early: a record forwarded to a repartition topic is in
        flight until the consumer fetches it (the partition's highwater is the last
        fetched one), and a partition not fetched yet has no lag series at all.
        """
        last: dict[str, float] | None = None
        since = time.monotonic()

        def quiet_long_enough() -> dict[str, float] | None:
            nonlocal last, since
            samples = self.metrics()
            counts = {k: v for k, v in samples.items() if k.startswith("cx_events_total{")}
            if lag_of(samples) or counts != last:
                last, since = counts, time.monotonic()
                return None
            return samples if time.monotonic() - since >= quiet else None

        found: dict[str, float] = self.wait_until(
            quiet_long_enough, timeout, f"lag 0 and the event counters unchanged for {quiet:g} s"
        )
        return found

    def wait_until(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                found = predicate()
                if found:
                    return found
            except OSError as exc:
                last_error = exc
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} ({last_error}):\n{self.log_tail()}")


class ConnectProcess(WorkerProcess):
    """`python -m stream_app connect` in a child process: the connectors' receiver."""

    def __init__(self, bootstrap: str, workdir: Path, **env: str) -> None:
        super().__init__(bootstrap, workdir, f"connect-{RUN}", **env)
        self.log_path = workdir / f"connect-{self.port}.log"
        self.env["STREAM_APP_CONNECT_PORT"] = str(self.port)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream_app", "connect"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_until(lambda: self.get("/healthz"), 120, "the receiver to listen")

    def post(self, route: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """POST to /webhooks/<route>: (status, body), whatever the status."""
        request = urllib.request.Request(
            f"{self.url}/webhooks/{route}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def series(name: str, **labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def lag_of(samples: dict[str, float]) -> float:
    """Input records not yet processed: the `cx_consumer_lag` series summed."""
    return sum(v for k, v in samples.items() if k.startswith("cx_consumer_lag{"))


def metric_value(samples: dict[str, float], name: str, **labels: str) -> float | None:
    """Find a sample whatever order the exposition put its labels in."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and set(re.findall(r'\w+="[^"]*"', rest)) == wanted:
            return value
    return None


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` in a thread of its own: also works while a loop runs here
    (Playwright's sync API keeps one running in the test's thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def produce(bootstrap: str, records: list[tuple[str, bytes | None, bytes | None]]) -> list[Any]:
    """Send (topic, key, value) in order; returns the record metadata (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in records]
        return [await f for f in futures]
    finally:
        await producer.stop()


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    """Create one topic (replication 1) with the admin API."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def consume_all(
    bootstrap: str, topic: str, timeout: float = 5.0, isolation_level: str = "read_uncommitted"
) -> list[Any]:
    """Every record currently in `topic` (no consumer group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=500)
            for chunk in batch.values():
                records.extend(chunk)
            if asyncio.get_running_loop().time() > deadline:
                break
        return records
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """partition → next offset of `topic` now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def consume_range(
    bootstrap: str, topic: str, start: dict[int, int], timeout: float = 60.0
) -> list[Any]:
    """The records of `topic` from `start` offsets up to its end offsets at call time."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        end = await consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        pending = {tp for tp in tps if start.get(tp.partition, 0) < end[tp]}
        while pending:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{topic}: not at the end offsets after {timeout} s")
            for chunk in (await consumer.getmany(*pending, timeout_ms=500)).values():
                records.extend(chunk)
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        # tansu can report the base offset of a partition's last batch + 1 as its
        # end: read on until a fetch comes back empty.
        while chunk := await consumer.getmany(timeout_ms=500):
            for found in chunk.values():
                records.extend(found)
        return records
    finally:
        await consumer.stop()


KAFKA_LOCAL = Path(__file__).resolve().parents[2] / "scripts" / "kafka-local"


class LocalKafka:
    """An Apache Kafka of a test's own (scripts/kafka-local), whatever the session uses."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="cx-outage-kafka-")
        self.bootstrap = self._run("start")

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            [str(KAFKA_LOCAL), *args, "--dir", self.directory], capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def stop(self) -> None:
        self._run("stop")

    def restart(self) -> None:
        assert self._run("start", "--keep-data") == self.bootstrap

    def close(self) -> None:
        subprocess.run([str(KAFKA_LOCAL), "stop", "--dir", self.directory], capture_output=True)
