"""Rebalance: two workers share the partitions; one is killed and later restarted.

The survivor takes over the dead worker's input and partials partitions, restores
their state from the changelogs, and goes on; after the restart the partitions are
shared again. When the stream is drained every figure equals the pure core's, and
at no sampled moment does a per-channel series appear on both workers' /metrics.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import pytest

from stream_app.metrics import parse_samples
from tests.integration.exactness import bench_stream, exactly_once, owns_channels, progress, settle, total
from tests.integration.harness import RUN, WorkerProcess, produce, run_sync

pytestmark = [pytest.mark.integration, pytest.mark.fault]
EVENTS = int(os.environ.get("CX_REBALANCE_EVENTS", "100000"))


def channel_series(worker: WorkerProcess, channels: set[str]) -> set[str]:
    """The per-channel series (scores, backlog, alert state) a worker exports now."""
    try:
        samples = parse_samples(worker.get("/metrics").decode())
    except OSError:  # killed or restarting: it exports nothing
        return set()
    return {key for key in samples if any(f'channel="{c}"' in key for c in channels)}


class OwnershipWatch(threading.Thread):
    """Samples both workers' /metrics back to back and records any overlap."""

    def __init__(self, workers: list[WorkerProcess], channels: set[str]) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.channels = channels
        self.samples = 0
        self.overlaps: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            a, b = (channel_series(w, self.channels) for w in self.workers)
            if a & b:
                self.overlaps.extend(sorted(a & b)[:3])
            self.samples += 1
            time.sleep(0.2)


def test_a_killed_worker_s_partitions_move_and_come_back_exact(
    quiet_bootstrap: str, workdir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = quiet_bootstrap
    rng = random.Random(RUN + "rebalance")
    stream = bench_stream("rebal", EVENTS, seed=rng.randrange(2**32))
    expected = total(stream)
    app_id = f"cx-rebalance-{RUN}"
    workers = [
        WorkerProcess(bootstrap, workdir, app_id, STREAM_APP_STORE="rocksdb://", **stream.env)
        for _ in range(2)
    ]
    survivor, victim = workers
    for worker in workers:
        worker.start()
    watch = OwnershipWatch(workers, {*stream.channels, "all"})
    watch.start()
    phases: list[str] = []
    started = time.monotonic()

    def phase(name: str) -> None:
        phases.append(f"{name} {time.monotonic() - started:.0f} s")

    try:
        half = len(stream.records) // 2
        run_sync(produce(bootstrap, stream.records[:half]))
        survivor.wait_until(lambda: progress(workers, stream) >= 0.2 * expected, 300, "20% counted")
        phase("20% counted")
        # the group may still be settling its first assignment (a fast stage 1 counts
        # 20% before the second member has channels): the kill must find both owning some
        survivor.wait_until(
            lambda: all(owns_channels(w) for w in workers), 120, "both workers to own channels"
        )
        shared = [w for w in workers if owns_channels(w)]
        victim.kill()
        run_sync(produce(bootstrap, stream.records[half:]))
        survivor.wait_until(lambda: progress([survivor], stream) >= 0.7 * expected, 300, "70% after the kill")
        phase("70% after the kill")
        victim.start()
        victim.wait_until(lambda: owns_channels(victim), 180, "the restarted worker to get channels back")
        phase("channels back")
        result = settle(workers, stream)
        phase("settled" if result.lost == 0 else "gave up settling")
        owners_after = [w for w in workers if owns_channels(w)]
    finally:
        watch.done.set()
        watch.join(5)
        for worker in workers:
            worker.stop()
    with capsys.disabled():
        print(
            f"\n  rebalance: {EVENTS:,} events, 1 worker killed and restarted: lost {result.lost},"
            f" double-counted {result.double}; {watch.samples} samples, {len(watch.overlaps)} overlaps"
            f" ({', '.join(phases)})"
        )
        if result.lost or result.double:  # CI keeps no worker logs: say what differs and what they said
            print("  differing counts (got/want):\n    " + "\n    ".join(result.counts[:40]))
            for name, worker in (("survivor", survivor), ("victim", victim)):
                print(f"  {name} log, warnings and errors:\n{worker.log_problems()}")
    assert len(shared) == 2, "both workers should own channels before the kill"
    assert len(owners_after) == 2, "the restarted worker should own channels again"
    assert result.lost == 0, result.differing
    if exactly_once():
        assert result.equal, f"lost {result.lost}, double {result.double}: {result.differing[:10]}"
    assert not watch.overlaps, watch.overlaps
