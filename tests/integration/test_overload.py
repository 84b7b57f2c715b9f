"""Overload: a minute of input at twice what the worker processes.

Runs on an Apache Kafka of its own (scripts/kafka-local). The worker's own
throughput is measured first (draining a 50,000-event backlog);
then events are offered at twice that rate for CX_OVERLOAD_SECONDS (default 60).
The worker must stay up with bounded memory (it fetches a bounded amount ahead:
the backlog waits in Kafka, not in the worker), export the growing backlog as
`cx_consumer_lag`, and drain it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from stream_app.bench import rss_bytes
from tests.integration.exactness import bench_stream
from tests.integration.harness import RUN, LocalKafka, WorkerProcess, produce, run_sync

pytestmark = [pytest.mark.integration, pytest.mark.fault]
OVERLOAD_S = float(os.environ.get("CX_OVERLOAD_SECONDS", "60"))
POOL = 50_000
#: The worker's memory may grow with the tickets, chats and surveys it holds
#: (about 300 bytes each), never with the backlog: far below this.
RSS_LIMIT_MB = 700


def counted(worker: WorkerProcess) -> float:
    """Input records the worker has handled, whatever their outcome."""
    return sum(v for k, v in worker.metrics().items() if k.startswith("cx_events_total{"))


def rss_mb(pid: int) -> float:
    return rss_bytes(pid) / 2**20


async def offer(
    bootstrap: str, pool: list[tuple[str, bytes, bytes]], tag: bytes, rate: float, seconds: float
) -> int:
    """Send fresh copies of the pool (new ids each pass) at `rate` events/s; returns how many.

    Records go out as whole batches per partition (`send_batch`): one `send` per
    record costs the test process too much CPU to reach twice the worker's rate on
    the two cores it shares with the broker and the worker. Keys are placed as
    Kafka's default partitioner places them (murmur2), so no record needs re-keying.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    sent = 0
    try:
        partitions = {topic: len(await producer.partitions_for(topic)) for topic in {t for t, _, _ in pool}}
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(rate * min(elapsed + 0.1, seconds)) - sent
            batches: dict[tuple[str, int], Any] = {}
            for _ in range(max(0, due)):
                topic, key, value = pool[sent % len(pool)]
                fresh = b"-%08x-" % (sent // len(pool) + 1)  # same length as the tag
                key = key.replace(tag, fresh)
                where = (topic, (murmur2(key) & 0x7FFFFFFF) % partitions[topic])  # Kafka's default
                batch = batches.get(where) or batches.setdefault(where, producer.create_batch())
                if batch.append(key=key, value=value.replace(tag, fresh), timestamp=None) is None:
                    await producer.send_batch(batch, topic, partition=where[1])
                    batches[where] = batch = producer.create_batch()
                    batch.append(key=key, value=value.replace(tag, fresh), timestamp=None)
                sent += 1
            for (topic, partition), batch in batches.items():
                await producer.send_batch(batch, topic, partition=partition)
            await asyncio.sleep(max(0.0, start + elapsed + 0.1 - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def test_twice_the_throughput_for_a_minute_is_survived_and_drained(
    own_kafka: LocalKafka, workdir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = own_kafka.bootstrap  # ~2,000,000 events: not on the session's broker
    stream = bench_stream("overload", POOL, seed=11, misrouted=0, history=0)
    tag = re.search(rb"-[0-9a-f]{8}-", stream.records[0][1])
    assert tag is not None
    worker = WorkerProcess(
        bootstrap,
        workdir,
        f"cx-overload-{RUN}",
        STREAM_APP_STORE="rocksdb://",
        **stream.env,
    )
    worker.start()
    samples: list[tuple[float, float, float]] = []  # (seconds into the overload, lag, RSS MB)
    try:
        worker.wait_until(lambda: worker.get("/healthz"), 120, "the worker's web server")
        run_sync(produce(bootstrap, stream.records))
        # Timed from the first event counted (the intake group has joined) to the last.
        first = worker.wait_until(
            lambda: (c := counted(worker)) and (time.monotonic(), c), 300, "a first event"
        )
        worker.wait_until(lambda: worker.lag() == 0 and counted(worker) >= POOL, 300, "the backlog drained")
        throughput = (counted(worker) - first[1]) / (time.monotonic() - first[0])
        assert worker.process is not None
        rss_before = rss_mb(worker.process.pid)

        rate = 2 * throughput
        result: dict[str, int] = {}
        producer = threading.Thread(
            target=lambda: result.update(
                sent=run_sync(offer(bootstrap, stream.records, tag.group(), rate, OVERLOAD_S))
            )
        )
        begin = time.monotonic()
        producer.start()
        while producer.is_alive():
            samples.append((time.monotonic() - begin, worker.lag(), rss_mb(worker.process.pid)))
            time.sleep(1)
        producer.join()
        offered = result["sent"] / (time.monotonic() - begin)
        drain_start = time.monotonic()
        worker.wait_until(lambda: worker.lag() == 0, 600, "the overload backlog to drain")
        drained_in = time.monotonic() - drain_start
        assert worker.process.poll() is None
        peak_rss = max(rss for _, _, rss in samples)
    finally:
        worker.stop()
    peak_lag = max(lag_ for _, lag_, _ in samples)
    with capsys.disabled():
        print(
            f"\n  overload: service {throughput:,.0f} ev/s, offered {offered:,.0f} ev/s for {OVERLOAD_S:.0f}s"
            f" ({result['sent']:,} events); peak lag {peak_lag:,.0f}, drained {drained_in:.0f} s after;"
            f" RSS {rss_before:.0f} MB before, peak {peak_rss:.0f} MB"
        )
    # Twice, within the pacing's slack (the producer shares two cores with the broker and the worker).
    assert offered >= 1.8 * throughput, f"offered only {offered / throughput:.2f}x the worker's rate"
    assert peak_lag > 0, "the backlog must show as cx_consumer_lag"
    assert samples[-1][1] > samples[len(samples) // 4][1], "lag should grow while input outpaces the worker"
    assert peak_rss < RSS_LIMIT_MB, samples
