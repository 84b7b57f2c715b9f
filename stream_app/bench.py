"""`stream-app bench`: how fast the whole pipeline is, next to what bounds it.

One run, one broker, the same events for every contender:

1. limit     plain aiokafka consume + orjson decode of the input topics;
2. baseline  the obvious Faust design: every event updates a `.tumbling()` windowed
             table (one changelog write per event), see `baseline_main`;
3. service   the real worker (validation, dedup, state machines, every window), from
             its first record to the last aggregate visible in /metrics;
4. latency   at a fixed offered load: produce → the metric update visible in /metrics;
5. memory    the worker's RSS while it works, and its peak;
6. quix      (`--quix`) a peer: Quix Streams folding per-channel tumbling CSAT
             counts from the same topics (stream_app/bench_quix.py).

Every throughput row is also shown as a share of the same run's limit.

Each contender runs in a process of its own and reads the pre-loaded topics from
the beginning under a fresh consumer group, so none shares a cache with another.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_app.config import DEFAULT_CHANNELS
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS
from stream_app.generator import PROFILES, Generator
from stream_app.metrics import parse_samples

INPUT_TOPICS = ("cx.tickets", "cx.chats", "cx.surveys")
PROBE_CHANNEL = "bench_probe"
#: Ticket-heavy channel mix and a high survey rate, the helpdesk-centred mix the
#: issue describes (each channel's other figures as the demo's).
BENCH_PROFILES = {
    name: replace(p, ticket_share=min(1.0, 0.68 + p.ticket_share * 0.32)) for name, p in PROFILES.items()
}
BENCH_SURVEY_RATE = 0.95
#: Event times spread over the last two hours: every window has data, none is in the future.
SPAN_MS = 2 * HOUR_MS

Record = tuple[str, bytes, bytes]
#: /metrics polling in the latency phase. 20 ms polls (before 2026-12) cost the worker
#: half a core (a scrape takes ~10 ms) and measured the polling more than the pipeline;
#: 100 ms bounds the error at +100 ms against the 1 s target.
LATENCY_POLL_S = 0.1


@dataclass
class Dataset:
    records: list[Record]
    mix: dict[str, int]
    contacts: int  # tickets created + chats started
    surveys: int


def bench_queues(count: int) -> list[str]:
    """The queues of `--queues N`: q0 … q{N-1}."""
    return [f"q{i}" for i in range(count)]


def make_events(count: int, seed: int, end_ms: int, span_ms: int = SPAN_MS, queues: int = 0) -> Dataset:
    """`count` events of the bench mix with event times in [end - span, end], in time order.

    Contacts start across the span; their events after `end` are dropped (those
    contacts are still in progress). Passes repeat until there are enough events.
    With `queues`, every channel's contacts are spread evenly over that many queues.
    """
    routing = {c: [(q, 1.0) for q in bench_queues(queues)] for c in DEFAULT_CHANNELS} if queues else None
    generator = Generator(
        seed,
        list(DEFAULT_CHANNELS),
        profiles=BENCH_PROFILES,
        survey_rate=BENCH_SURVEY_RATE,
        queues=routing,
    )
    timed: list[tuple[int, Record]] = []
    step = span_ms / max(count / 4.0, 1.0)  # about 4-5 events per contact
    while len(timed) < count:
        t = float(end_ms - span_ms)
        while t < end_ms:
            generator.new_contact(int(t))
            t += generator.random.expovariate(1 / step)
        timed.extend((at, (topic, key, value)) for at, topic, key, value in generator.due(end_ms))
        generator.queue.clear()
    timed.sort(key=lambda item: item[0])
    records = [record for _, record in timed[:count]]
    mix = Counter(topic for topic, _, _ in records)
    contacts = surveys = 0
    for topic, _, value in records:
        if topic == "cx.surveys":
            surveys += 1
        elif b'"ticket.created"' in value or b'"chat.started"' in value:
            contacts += 1
    return Dataset(records, dict(mix), contacts, surveys)


async def produce_all(bootstrap: str, records: list[Record]) -> float:
    """Load the records as fast as the broker takes them; returns events/s."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024, compression_type=None
    )
    await producer.start()
    start = time.perf_counter()
    try:
        pending = []
        for topic, key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(records) / (time.perf_counter() - start)


# --- 1. limit ---------------------------------------------------------------------


async def measure_limit(bootstrap: str, expected: int) -> float:
    """Plain aiokafka + orjson: the ceiling for any Python consumer of these topics."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        from stream_app.topics import partitions_of

        tps = [tp for topic in INPUT_TOPICS for tp in await partitions_of(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        first = last = 0.0
        loads = orjson.loads
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            for records in batch.values():
                if not first:
                    first = time.perf_counter()
                for record in records:
                    loads(record.value)
                seen += len(records)
            last = time.perf_counter()
        return expected / (last - first)
    finally:
        await consumer.stop()


# --- 2. baseline: the obvious Faust design ------------------------------------------


def baseline_main(bootstrap: str, expected: int, result_path: str, broker_kind: str) -> None:
    """A Faust app where every event updates a tumbling windowed table (runs in a child)."""
    from datetime import timedelta

    import faust

    on_tansu = broker_kind == "tansu"
    app = faust.App(
        f"bench-baseline-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=4,
        broker_session_timeout=2.0 if on_tansu else 10.0,
        broker_heartbeat_interval=0.5 if on_tansu else 3.0,
        producer_max_batch_size=1 if on_tansu else 16384,
    )
    counts = app.Table("counts", default=int, partitions=4).tumbling(
        timedelta(minutes=1), expires=timedelta(hours=1)
    )
    state = {"seen": 0, "first": 0.0}

    async def count(stream: Any) -> None:
        async for value in stream:
            event = orjson.loads(value)
            counts[event.get("channel", "?")] += 1
            if not state["seen"]:
                state["first"] = time.time()
            state["seen"] += 1
            if state["seen"] == expected:
                Path(result_path).write_text(
                    json.dumps({"events": expected, "seconds": time.time() - state["first"]})
                )
                os._exit(0)

    for name in INPUT_TOPICS:
        topic = app.topic(name, key_serializer="raw", value_serializer="raw", partitions=4)
        app.agent(topic, name=f"count-{name}")(count)
    worker = faust.Worker(app, loglevel="WARNING", redirect_stdouts=False)
    worker.execute_from_commandline()


def measure_baseline(
    bootstrap: str, expected: int, broker_kind: str, workdir: Path, timeout_s: float
) -> float:
    result = workdir / "baseline.json"
    args = ["stream_app.bench", "--baseline-child", bootstrap, str(expected), str(result), broker_kind]
    return run_contender("baseline", args, result, timeout_s)


def run_contender(name: str, module_args: list[str], result: Path, timeout_s: float) -> float:
    """Run `python -m <module_args>` in a child that writes `result` (`{"events",
    "seconds"}`) when it is done, and return its events/s; its output goes to the
    `.log` file beside `result`.

    Raises RuntimeError if the child stops without a result or runs out of time."""
    log_path = result.with_suffix(".log")
    with log_path.open("wb") as log:
        child = subprocess.Popen([sys.executable, "-m", *module_args], stdout=log, stderr=subprocess.STDOUT)
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise RuntimeError(f"{name} did not finish in {timeout_s:.0f} s (log {log_path})") from None
    if not result.exists():
        lines = log_path.read_text(errors="replace").strip().splitlines()
        last = lines[-1] if lines else "no output"
        raise RuntimeError(f"{name} stopped (exit {child.returncode}): {last} (log {log_path})")
    figures = json.loads(result.read_text())
    return float(figures["events"]) / float(figures["seconds"])


# --- 3-5. the service ---------------------------------------------------------------


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far; 0.0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        return parse_samples(response.read().decode())


def total(samples: dict[str, float], prefix: str, *must: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix) and all(m in k for m in must))


@dataclass
class ServiceRun:
    events_per_s: float = 0.0
    seconds: float = 0.0
    rss_samples: list[tuple[int, int]] = field(default_factory=list)  # (events counted, RSS bytes)
    #: First record counted → every record counted by the intake (before the merge stage
    #: has them all in /metrics): how much of `seconds` is stage 1's.
    intake_seconds: float = 0.0
    #: CPU time the workers used over `seconds` (steadier than wall-clock time on a
    #: busy machine: what a change costs, not what the broker was doing meanwhile).
    cpu_seconds: float = 0.0
    peak_rss: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_probes: int = 0
    offered_rate: float = 0.0


class Worker:
    """One worker process; workers given the same `app_id` share the work (one group)."""

    def __init__(
        self,
        bootstrap: str,
        broker_kind: str,
        workdir: Path,
        store: str,
        queues: int,
        app_id: str,
        index: int,
        report_queues: bool = True,
    ) -> None:
        from stream_app.embedded_broker import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        suffix = f"-{index}" if index else ""
        env = {
            **os.environ,
            "STREAM_APP_BROKER": bootstrap,
            "STREAM_APP_APP_ID": app_id,
            "STREAM_APP_WEB_PORT": str(self.port),
            "STREAM_APP_STORE": store,
            "STREAM_APP_DATA_DIR": str(workdir / f"worker-data{suffix}"),
            "STREAM_APP_CHANNELS": ",".join([*DEFAULT_CHANNELS, PROBE_CHANNEL]),
            "STREAM_APP_LOG_LEVEL": "warning",
        }
        if queues and report_queues:
            env["STREAM_APP_QUEUES"] = ",".join(bench_queues(queues))
        self.log = workdir / f"worker{suffix}.log"
        command = [sys.executable, "-m", "stream_app", "worker"]
        #: CX_BENCH_PYSPY=file: py-spy records the service phase only (`profile_service`).
        self.profile_path = os.environ.get("CX_BENCH_PYSPY") if index == 0 else None
        self.profiler: subprocess.Popen[bytes] | None = None
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def profile_service(self, start: bool) -> None:
        """Attach py-spy (collapsed stacks, for docs/performance.md) / stop it, which writes the file."""
        if not self.profile_path:
            return
        if start:
            spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
            command = [spy, "record", "--format", "raw", "--rate", "200", "-o", self.profile_path]
            self.profiler = subprocess.Popen([*command, "--pid", str(self.process.pid)])
        elif self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            self.profiler.wait(30)
            self.profiler = None

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited {self.process.returncode}; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def measure_service(workers: list[Worker], data: Dataset, timeout_s: float) -> ServiceRun:
    """First record counted → the last aggregate (all contacts, all surveys) in /metrics.

    With several workers: events counted by all of them, the `all` series from the one
    that owns it (a series is exported by its owner only), RSS summed.
    """
    run = ServiceRun()
    expected = len(data.records)
    deadline = time.monotonic() + timeout_s
    first = cpu_first = 0.0
    while True:
        for worker in workers:
            worker.alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not finish {expected} events in {timeout_s:.0f} s")
        try:
            scraped = [scrape(worker.url) for worker in workers]
        except OSError:
            time.sleep(0.2)
            continue
        now = time.perf_counter()
        counted = int(sum(total(samples, "cx_events_total{") for samples in scraped))
        if counted and not first:
            first = now
            cpu_first = sum(cpu_seconds(worker.process.pid) for worker in workers)
            workers[0].profile_service(start=True)
        if counted >= expected and not run.intake_seconds:
            run.intake_seconds = now - first
        rss = sum(rss_bytes(worker.process.pid) for worker in workers)
        if counted:
            run.rss_samples.append((counted, rss))
        contacts = max(total(samples, "cx_contacts{", 'channel="all"', 'window="24h"') for samples in scraped)
        surveys = max(
            sum(
                total(samples, name, 'channel="all"', 'window="24h"')
                for name in ("cx_csat_responses{", "cx_nps_responses{", "cx_ces_responses{")
            )
            for samples in scraped
        )
        if counted >= expected and contacts >= data.contacts and surveys >= data.surveys:
            run.seconds = now - first
            run.cpu_seconds = sum(cpu_seconds(worker.process.pid) for worker in workers) - cpu_first
            run.events_per_s = expected / run.seconds if run.seconds else float("inf")
            workers[0].profile_service(start=False)
            return run
        # A scrape costs the worker ~10 ms (every snapshot, then the exposition text): poll
        # every 0.2 s, or every 2% of the time so far, so polling never takes much of it.
        time.sleep(min(1.0, max(0.2, (now - first) * 0.02 if first else 0.2)))


async def measure_latency(
    workers: list[Worker], bootstrap: str, rate: float, seconds: float, seed: int
) -> list[float]:
    """Offer `rate` events/s for `seconds`; every 100 ms a probe survey on its own channel.

    A probe's latency: from just before it is produced until /metrics counts it.
    """
    load = make_events(int(rate * seconds), seed + 1, int(time.time() * 1000)).records
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    await producer.start()
    sent_at: list[float] = []
    seen_at: list[float] = []
    stop = asyncio.Event()

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set() or len(seen_at) < len(sent_at):
            scraped = [await loop.run_in_executor(None, scrape, worker.url) for worker in workers]
            now = time.perf_counter()
            probe_key = f'cx_csat_responses{{channel="{PROBE_CHANNEL}",window="15m"}}'
            count = int(max(samples.get(probe_key, 0) for samples in scraped))
            while len(seen_at) < min(count, len(sent_at)):
                seen_at.append(now)
            if stop.is_set() and time.perf_counter() - stopped_at[0] > 30:
                break
            await asyncio.sleep(LATENCY_POLL_S)

    stopped_at = [0.0]
    watcher = asyncio.create_task(watch())
    try:
        start = time.perf_counter()
        sent = 0
        probes = 0
        while sent < len(load):
            elapsed = time.perf_counter() - start
            due = min(len(load), int(elapsed * rate))
            for topic, key, value in load[sent:due]:
                await producer.send(topic, value, key=key)
            sent = due
            if elapsed >= probes * 0.1:
                probes += 1
                probe: dict[str, Any] = {
                    "event_id": f"probe-{seed}-{probes}",
                    "event_type": "survey.submitted",
                    "occurred_at": _now_iso(),
                    "channel": PROBE_CHANNEL,
                    "response_id": f"probe-{seed}-{probes}",
                    "survey": "csat",
                    "score": 5,
                }
                sent_at.append(time.perf_counter())
                await producer.send("cx.surveys", orjson.dumps(probe), key=str(probe["response_id"]).encode())
            await asyncio.sleep(0.002)
        await producer.flush()
        stop.set()
        stopped_at[0] = time.perf_counter()
        await watcher
    finally:
        await producer.stop()
    return [(seen - sent) * 1000 for sent, seen in zip(sent_at, seen_at, strict=False)]


def _now_iso() -> str:
    from stream_app.core.timeutil import format_ms

    return format_ms(int(time.time() * 1000))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the command ----------------------------------------------------------------------


@dataclass
class Report:
    broker: str
    events: int
    mix: dict[str, float]
    produce_events_per_s: float
    limit_events_per_s: float
    baseline_events_per_s: float
    service_events_per_s: float
    service_seconds: float
    #: Of `service_seconds`: first record → every record counted by stage 1.
    intake_seconds: float
    #: Worker CPU time (user + system) over `service_seconds`, all workers.
    service_cpu_seconds: float
    latency_offered_events_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_probes: int
    peak_rss_mb: float
    rss_mb_at: list[tuple[int, float]]
    service_vs_limit: float
    service_vs_baseline: float
    store: str
    queues: int = 0
    #: False (`--unreported-queues`): the events name `queues` queues, STREAM_APP_QUEUES is unset.
    queues_reported: bool = True
    #: The Quix Streams peer (`--quix`); 0: not run.
    quix_events_per_s: float = 0
    service_vs_quix: float = 0.0
    #: Why the peer row is missing when `--quix` was asked for.
    quix_error: str = ""
    #: Worker processes sharing the work (one group); RSS figures are their sum.
    workers: int = 1


def run_bench(args: argparse.Namespace) -> Report:
    if args.workers < 1:
        raise SystemExit(f"--workers must be 1 or more, not {args.workers}")
    workdir = Path(tempfile.mkdtemp(prefix="cx-bench-"))
    broker_label, bootstrap, broker_kind, stop_broker = start_broker(args.broker, workdir)
    try:
        print(f"broker: {broker_label}; work files in {workdir}", flush=True)
        asyncio.run(create_topics(bootstrap))
        data = make_events(args.events, args.seed, int(time.time() * 1000) - MINUTE_MS, queues=args.queues)
        produced = asyncio.run(produce_all(bootstrap, data.records))
        print(f"produced {len(data.records):,} events at {produced:,.0f} ev/s", flush=True)
        limit = asyncio.run(measure_limit(bootstrap, len(data.records)))
        print(f"limit:    {limit:,.0f} ev/s", flush=True)
        if args.skip_baseline:
            baseline = float("nan")
        else:
            baseline = measure_baseline(bootstrap, len(data.records), broker_kind, workdir, args.timeout)
        print(f"baseline: {baseline:,.0f} ev/s", flush=True)
        quix, quix_error = 0.0, ""
        if args.quix:
            from stream_app.bench_quix import measure_quix

            try:
                quix = measure_quix(bootstrap, len(data.records), workdir, args.timeout)
            except RuntimeError as exc:  # the peer failing is no reason to lose the other rows
                quix_error = str(exc)
            print(f"quix:     {f'{quix:,.0f} ev/s' if quix else quix_error}", flush=True)
        app_id = f"cx-bench-{uuid.uuid4().hex[:8]}"
        workers = [
            Worker(
                bootstrap,
                broker_kind,
                workdir,
                args.store,
                args.queues,
                app_id,
                index,
                report_queues=not args.unreported_queues,
            )
            for index in range(args.workers)
        ]
        try:
            service = measure_service(workers, data, args.timeout)
            print(f"service:  {service.events_per_s:,.0f} ev/s", flush=True)
            latencies = asyncio.run(
                measure_latency(workers, bootstrap, args.rate, args.latency_seconds, args.seed)
            )
            service.peak_rss = sum(rss_bytes(worker.process.pid, "VmHWM") for worker in workers)
            for worker in workers:
                worker.alive()
        finally:
            for worker in workers:
                worker.stop()
        n = len(data.records)
        rss_points = _spread(service.rss_samples, 10)
        return Report(
            broker=broker_label,
            events=n,
            mix={topic: round(count / n, 3) for topic, count in sorted(data.mix.items())},
            produce_events_per_s=round(produced),
            limit_events_per_s=round(limit),
            baseline_events_per_s=round(baseline) if baseline == baseline else 0,
            service_events_per_s=round(service.events_per_s),
            service_seconds=round(service.seconds, 2),
            intake_seconds=round(service.intake_seconds, 2),
            service_cpu_seconds=round(service.cpu_seconds, 2),
            latency_offered_events_per_s=args.rate,
            latency_p50_ms=round(statistics.median(latencies), 1) if latencies else None,
            latency_p99_ms=round(percentile(latencies, 0.99), 1) if latencies else None,
            latency_probes=len(latencies),
            peak_rss_mb=round(service.peak_rss / 2**20, 1),
            rss_mb_at=[(events, round(rss / 2**20, 1)) for events, rss in rss_points],
            service_vs_limit=round(service.events_per_s / limit, 3),
            service_vs_baseline=round(service.events_per_s / baseline, 1) if baseline == baseline else 0.0,
            store=args.store,
            queues=args.queues,
            queues_reported=not args.unreported_queues,
            quix_events_per_s=round(quix),
            service_vs_quix=round(service.events_per_s / quix, 2) if quix else 0.0,
            quix_error=quix_error,
            workers=args.workers,
        )
    finally:
        stop_broker()


def _spread(samples: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    if len(samples) <= count:
        return samples
    step = (len(samples) - 1) / (count - 1)
    return [samples[round(i * step)] for i in range(count)]


async def create_topics(bootstrap: str) -> None:
    from stream_app import config
    from stream_app.topics import ensure_topics

    await ensure_topics(config.load({"STREAM_APP_BROKER": bootstrap}))


def start_broker(kind: str, workdir: Path) -> tuple[str, str, str, Any]:
    if kind == "embedded":
        from stream_app.embedded_broker import EmbeddedBroker

        broker = EmbeddedBroker(log_path=str(workdir / "tansu.log"))
        broker.start()
        return "embedded broker (tansu)", broker.bootstrap, "tansu", broker.stop
    if kind == "kafka":
        script = Path(__file__).resolve().parent.parent / "scripts" / "kafka-local"
        if not script.exists():
            raise SystemExit("--broker kafka needs a source checkout (scripts/kafka-local)")
        kafka_dir = workdir / "kafka"
        out = subprocess.run(
            [str(script), "start", "--dir", str(kafka_dir)], check=True, capture_output=True, text=True
        )
        bootstrap = out.stdout.strip().splitlines()[-1]
        version = _kafka_version(script.parent / "kafka-pom.xml")

        def stop() -> None:
            subprocess.run([str(script), "stop", "--dir", str(kafka_dir)], capture_output=True)

        return f"Apache Kafka {version} (scripts/kafka-local)", bootstrap, "kafka", stop
    raise SystemExit(f"--broker must be embedded or kafka, not {kind!r}")


def _kafka_version(pom: Path) -> str:
    import re

    found = re.search(r"<kafka.version>(.*?)</kafka.version>", pom.read_text())
    return found.group(1) if found else "?"


def _queues_label(report: Report) -> str:
    if not report.queues:
        return ""
    return f" {report.queues} queues{'' if report.queues_reported else ' (named, not reported)'},"


def format_report(report: Report) -> str:
    mix = " / ".join(f"{share:.0%} {topic.split('.')[1]}" for topic, share in report.mix.items())
    p50 = "-" if report.latency_p50_ms is None else f"{report.latency_p50_ms:,.0f} ms"
    p99 = "-" if report.latency_p99_ms is None else f"{report.latency_p99_ms:,.0f} ms"
    rss = ", ".join(f"{events:,}: {mb:.0f}" for events, mb in report.rss_mb_at)
    limit = report.limit_events_per_s

    def share(rate: float) -> str:
        return f"  {rate / limit:6.1%} of limit" if limit and rate else ""

    baseline = (
        f"{report.baseline_events_per_s:>10,} ev/s{share(report.baseline_events_per_s)}"
        if report.baseline_events_per_s
        else "  not run (--skip-baseline)"
    )
    lines = [
        f"CX stream bench: {report.broker}, {report.events:,} events ({mix}), 9 channels,"
        f"{_queues_label(report)} store {report.store}"
        f"{f', {report.workers} workers (RSS summed)' if report.workers > 1 else ''}",
        f"  1. limit     aiokafka consume + orjson decode         {report.limit_events_per_s:>10,} ev/s",
        f"  2. baseline  Faust, per-event tumbling-table update   {baseline}",
        f"  3. service   whole pipeline, first record → /metrics  {report.service_events_per_s:>10,} ev/s"
        f"{share(report.service_events_per_s)}  ({report.service_seconds:.1f} s; all counted by stage 1"
        f" after {report.intake_seconds:.1f} s; worker CPU {report.service_cpu_seconds:.1f} s,"
        f" {report.service_cpu_seconds / max(report.events, 1) * 1e6:.0f} µs/event)",
        f"  4. latency   at {report.latency_offered_events_per_s:,.0f} ev/s offered, produce → /metrics:"
        f"  p50 {p50}  p99 {p99}  ({report.latency_probes} probes)",
        f"  5. memory    worker peak RSS {report.peak_rss_mb:.0f} MB; RSS (MB) by events counted: {rss}",
    ]
    if report.quix_events_per_s:
        lines.append(
            f"  6. quix      Quix Streams, per-channel tumbling CSAT  {report.quix_events_per_s:>10,.0f} ev/s"
            f"{share(report.quix_events_per_s)}"
        )
    elif report.quix_error:
        lines.append(f"  6. quix      not measured: {report.quix_error}")
    ratios = f"  service/limit {report.service_vs_limit:.1%}"
    if report.service_vs_baseline:
        ratios += f"   service/baseline {report.service_vs_baseline:.1f}x"
    if report.service_vs_quix:
        ratios += f"   service/quix {report.service_vs_quix:.2f}x"
    lines.append(ratios)
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    report = run_bench(args)
    print()
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


def add_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="throughput, latency and memory of the pipeline (see README)")
    bench.add_argument("--events", type=int, default=500_000, help="events to produce (default 500000)")
    bench.add_argument("--broker", choices=["embedded", "kafka"], default="embedded",
                       help="embedded: tansu; kafka: Apache Kafka via scripts/kafka-local")  # fmt: skip
    bench.add_argument("--rate", type=float, default=5000, help="offered load for the latency phase (ev/s)")
    bench.add_argument("--latency-seconds", type=float, default=20, help="length of the latency phase")
    bench.add_argument("--store", default="rocksdb://", help="the worker's STREAM_APP_STORE")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument(
        "--queues",
        type=int,
        default=0,
        help="spread contacts over N queues, all reported (STREAM_APP_QUEUES)",
    )
    bench.add_argument(
        "--unreported-queues",
        action="store_true",
        help="with --queues: the events name the queues, but the worker does not report them "
        "(STREAM_APP_QUEUES unset); the cost of per-queue reporting is the difference to the same "
        "run without this flag",
    )
    bench.add_argument("--timeout", type=float, default=1800, help="give up on a contender after this (s)")
    bench.add_argument("--json", help="also write the figures to this file")
    bench.add_argument("--skip-baseline", action="store_true", help="leave out the (slow) Faust baseline")
    bench.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the work (one group; default 1)"
    )
    bench.add_argument(
        "--quix",
        action="store_true",
        help="add the Quix Streams peer row (needs the bench extra: pip install 'cx-stream[bench]')",
    )
    bench.set_defaults(func=cmd_bench)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--baseline-child":
        baseline_main(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
