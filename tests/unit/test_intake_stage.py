"""Stage 1's fold on its own (no broker): a large batch does not hold the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from stream_app.bench import make_events
from stream_app.config import load
from stream_app.core.intake import Intake, Schemas
from stream_app.intake_stage import FOLD_SLICE, IntakeStage, entity_partition
from stream_app.metrics import Instruments

END_MS = 1_800_000_000_000
PARTITIONS = 4


def _stage() -> IntakeStage:
    settings = load({"STREAM_APP_STORE": "memory://", "STREAM_APP_PARTITIONS": str(PARTITIONS)})
    intake = Intake(Schemas(), frozenset(settings.channels), settings.timeline(), settings.lifecycle_rules())
    return IntakeStage(settings, intake, Instruments(lambda: []), lambda ready, now: None)


def _records(count: int) -> dict[TopicPartition, list[Any]]:
    """The bench mix, each record on its entity's partition (as a keyed producer puts it)."""
    found: dict[TopicPartition, list[Any]] = {}
    for topic, key, value in make_events(count, 3, END_MS).records:
        partition = entity_partition(key.decode(), PARTITIONS)
        batch = found.setdefault(TopicPartition(topic, partition), [])
        batch.append(
            ConsumerRecord(
                topic, partition, len(batch), END_MS, 0, key, value, None, len(key), len(value), ()
            )
        )
    return found


def test_a_large_batch_is_folded_in_slices_that_let_the_event_loop_run() -> None:
    stage = _stage()
    records = _records(4 * FOLD_SLICE + 500)
    count = sum(len(batch) for batch in records.values())

    async def fold_beside_a_ticker() -> tuple[int, Any]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = ticks
        folded = await stage._fold(records, END_MS, sweep=False)
        during = ticks - started
        task.cancel()
        return during, folded

    during, folded = asyncio.run(fold_beside_a_ticker())
    # the loop ran other tasks at least once per slice while the batch was folded
    assert during >= count // FOLD_SLICE
    assert folded is not None
    accepted = sum(
        n
        for part in folded.parts.values()
        for (_, outcome), n in part.counts.items()
        if outcome == "accepted"
    )
    assert accepted == count  # every record folded, none lost to the slicing
    assert {tp: batch[-1].offset + 1 for tp, batch in records.items()} == {
        tp: offset for part in folded.parts.values() for tp, offset in part.offsets.items()
    }
