"""At-least-once across a crash: SIGKILL while batches are in flight loses nothing.

Each intake batch delivers its partials before it writes the state that marks its
events as seen, and Faust commits input offsets only after flushing the producer.
So whatever moment the worker dies at, every event reaches the scores at least once.
(Exactly once, with no double count, is the reliability issue's test.)
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from tests.factories import encode, event, survey
from tests.integration.harness import RUN, WorkerProcess, channel, metric_value, produce, run_sync

pytestmark = [pytest.mark.integration, pytest.mark.fault]
SURVEYS = 3000
TICKETS = 1500


def test_sigkill_between_flushes_loses_nothing(
    start_worker: Any, bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ch = channel("crash")
    app_id = f"cx-crash-{RUN}"
    env = {"STREAM_APP_STORE": "rocksdb://"}
    worker: WorkerProcess = start_worker(app_id, channel("probe"), **env)
    now = int(time.time() * 1000)
    records = []
    for i in range(SURVEYS):
        answer = survey("csat", 5 if i % 4 else 2, now - i * 100, ch, response_id=f"{ch}-r{i}")
        records.append(("cx.surveys", answer["response_id"].encode(), encode(answer)))
    for i in range(TICKETS):
        tid = f"{ch}-t{i}"
        records.append(
            ("cx.tickets", tid.encode(), encode(event("ticket.created", now - i * 200, ch, ticket_id=tid)))
        )
    random.Random(RUN).shuffle(records)
    half = len(records) // 2
    run_sync(produce(bootstrap, records[:half]))

    # Kill mid-stream: some of the first half is in scores, some in flight.
    worker.wait_until(lambda: counted_on(worker, ch) > 0, 60, "the first events to be counted")
    run_sync(produce(bootstrap, records[half:]))
    time.sleep(random.Random(RUN).uniform(0.0, 0.5))  # somewhere inside a batch's work
    worker.kill()

    restarted: WorkerProcess = start_worker(app_id, channel("probe"), **env)
    restarted.wait_until(
        lambda: counted_on(restarted, ch) >= SURVEYS + TICKETS, 120, "every event after the crash"
    )
    time.sleep(2)  # anything still replaying lands now
    samples = restarted.metrics()
    surveys = metric_value(samples, "cx_csat_responses", channel=ch, window="15m")
    tickets = metric_value(samples, "cx_contacts", channel=ch, window="15m", kind="ticket")
    assert surveys is not None and surveys >= SURVEYS, surveys
    assert tickets is not None and tickets >= TICKETS, tickets
    with capsys.disabled():
        print(f"\n  after SIGKILL: {surveys:.0f}/{SURVEYS} surveys, {tickets:.0f}/{TICKETS} tickets counted")


def counted_on(worker: WorkerProcess, ch: str) -> float:
    samples = worker.metrics()
    return (metric_value(samples, "cx_csat_responses", channel=ch, window="15m") or 0) + (
        metric_value(samples, "cx_contacts", channel=ch, window="15m", kind="ticket") or 0
    )
