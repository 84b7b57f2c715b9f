"""Crash: SIGKILL the worker at random points of a 100,000-event stream and restart it.

When the stream is drained, every snapshot (scores, counts, percentiles, for
every channel and window) must equal what the pure core computes from the same
events. On Apache Kafka the intake runs exactly_once (one transaction per batch
for partials, state changelog, dead letters and input offsets; the merge stage
stores the partials offset it applied with every scores record), so nothing may
be lost or counted twice. The embedded broker has no transactions: there the
intake is at_least_once, and the test requires that nothing is lost and reports
how much was counted twice.

Size and kills: CX_CRASH_EVENTS (default 100000), CX_CRASH_KILLS (default 3).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

from tests.integration.exactness import bench_stream, exactly_once, progress, settle, total
from tests.integration.harness import RUN, WorkerProcess, produce, run_sync

pytestmark = [pytest.mark.integration, pytest.mark.fault]
EVENTS = int(os.environ.get("CX_CRASH_EVENTS", "100000"))
KILLS = int(os.environ.get("CX_CRASH_KILLS", "3"))


def test_sigkill_at_random_points_keeps_every_figure_exact(
    quiet_bootstrap: str, workdir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = quiet_bootstrap  # a fresh embedded broker: see the fixture
    rng = random.Random(RUN)
    stream = bench_stream("crash", EVENTS, seed=rng.randrange(2**32))
    expected = total(stream)
    worker = WorkerProcess(bootstrap, workdir, f"cx-crash-{RUN}", STREAM_APP_STORE="rocksdb://", **stream.env)
    worker.start()
    kill_at = []
    try:
        # The stream goes in KILLS + 1 chunks; each kill lands at a random point inside
        # the chunk being processed, before the next chunk exists, so every incarnation
        # (after the first) restores state and does part of the work.
        bounds = [i * len(stream.records) // (KILLS + 1) for i in range(KILLS + 2)]
        for k in range(KILLS + 1):
            run_sync(produce(bootstrap, stream.records[bounds[k] : bounds[k + 1]]))
            if k == KILLS:
                break
            share = (bounds[k] + rng.uniform(0.2, 0.8) * (bounds[k + 1] - bounds[k])) / len(stream.records)
            kill_at.append(share)
            worker.wait_until(
                lambda share=share: progress([worker], stream) >= share * expected,
                300,
                f"{share:.0%} of the stream counted",
            )
            time.sleep(rng.uniform(0.0, 0.2))  # anywhere inside a batch's fold or commit
            worker.kill()
            worker.start()  # same instance id: fences and aborts what the killed one left open
        result = settle([worker], stream)
    finally:
        worker.stop()
    with capsys.disabled():
        print(
            f"\n  crash: {EVENTS:,} events, {KILLS} SIGKILLs at {', '.join(f'{s:.0%}' for s in kill_at)}:"
            f" lost {result.lost}, double-counted {result.double}, differing {len(result.differing)}"
        )
    assert result.lost == 0, result.differing
    if exactly_once():
        assert result.equal, f"lost {result.lost}, double {result.double}: {result.differing[:10]}"
