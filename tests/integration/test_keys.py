"""Records without a key or keyed by something else than their entity id (SPEC §2),
on one worker and on two: they are re-keyed through the repartition topic, and
every figure equals what correctly keyed input gives (the pure core's).

The stream also carries tickets and chats of 2-3 days ago (older than every
window) and the issue's scenario: a ticket created on its own partition, resolved
on another one, reopened on the first, which must stay open and lose its FCR credit.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from stream_app.config import load
from stream_app.intake_stage import entity_partition
from tests.factories import event
from tests.integration.exactness import bench_stream, owns_channels, settle
from tests.integration.harness import RUN, WorkerProcess, consume_range, end_offsets, produce, run_sync

pytestmark = pytest.mark.integration
EVENTS = int(os.environ.get("CX_KEYS_EVENTS", "20000"))
SCENARIO_TICKETS = 12


def wrong_key_elsewhere(ticket_id: str, partitions: int) -> bytes:
    """A key that Kafka's partitioner puts on another partition than the ticket's."""
    home = entity_partition(ticket_id, partitions)
    for n in range(100):
        key = f"zendesk-bridge-{n}"
        if entity_partition(key, partitions) != home:
            return key.encode()
    raise AssertionError("no other partition")


def scenario(now: int) -> list[tuple[str, bytes | None, dict[str, Any]]]:
    """Created (own key) → agent reply (no key) → resolved (another partition) →
    reopened (own key): open, FCR revoked. Half of them created 2 days ago."""
    partitions = load({}).partitions
    out: list[tuple[str, bytes | None, dict[str, Any]]] = []
    for i in range(SCENARIO_TICKETS):
        tid = f"keys-{RUN}-t{i}"
        t0 = now - 2 * 86_400_000 if i % 2 else now - 40 * 60_000
        own = tid.encode()
        steps = [
            ("ticket.created", t0, own),
            ("ticket.agent_replied", t0 + 60_000, None),
            ("ticket.resolved", t0 + 5 * 60_000, wrong_key_elsewhere(tid, partitions)),
            ("ticket.reopened", t0 + 20 * 60_000, own),
        ]
        for kind, at, key in steps:
            out.append(("cx.tickets", key, event(kind, at, "scenario", ticket_id=tid)))
    return out


@pytest.mark.parametrize("workers_count", [1, 2])
def test_unkeyed_and_mis_keyed_records_give_the_figures_of_keyed_input(
    bootstrap: str, workdir: Any, workers_count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time() * 1000)
    stream = bench_stream(
        f"keys{workers_count}", EVENTS, seed=workers_count, misrouted=0.3, extra=scenario(now)
    )
    scenario_channel = next(c for c in stream.channels if c.startswith("scenario_"))
    reference = {(s["channel"], s["window"]): s for s in stream.reference.snapshots(int(time.time() * 1000))}
    expected = reference[(scenario_channel, "1h")]
    # the pure core's own answer for the scenario, before any broker is involved
    assert expected["open_tickets"] == SCENARIO_TICKETS
    assert (expected["fcr"]["n"], expected["fcr"]["value"]) == (SCENARIO_TICKETS // 2, 0.0)

    app_id = f"cx-keys-{workers_count}-{RUN}"
    workers = [WorkerProcess(bootstrap, workdir, app_id, **stream.env) for _ in range(workers_count)]
    for worker in workers:
        worker.start()
    try:
        if workers_count == 2:
            for worker in workers:
                worker.wait_until(lambda w=worker: owns_channels(w), 180, "both workers to own partitions")
        dead_from = run_sync(end_offsets(bootstrap, "cx.deadletter"))
        run_sync(produce(bootstrap, stream.records))
        result = settle(workers, stream)
        # Nothing of this stream may be dead-lettered, history included. (Other workers
        # on the shared broker, which do not know its channels, dead-letter its records
        # as `unknown_channel`; a fresh group also dead-letters other tests' bad records.)
        marks = [c.encode() for c in stream.channels]
        dead_letters = sum(
            1
            for record in run_sync(consume_range(bootstrap, "cx.deadletter", dead_from))
            if record.value
            and any(mark in record.value for mark in marks)
            and dict(record.headers).get("x-error-reason") != b"unknown_channel"
        )
    finally:
        for worker in workers:
            worker.stop()
    with capsys.disabled():
        print(
            f"\n  keys: {len(stream.records):,} records (30% unkeyed or mis-keyed, 5% from 2-3 days ago),"
            f" {workers_count} worker(s): lost {result.lost}, double-counted {result.double},"
            f" dead letters {dead_letters:.0f}"
        )
    # No fault is injected: at-least-once (the embedded broker) is exact here too.
    assert result.equal, f"lost {result.lost}, double {result.double}: {result.differing[:10]}"
    assert dead_letters == 0
