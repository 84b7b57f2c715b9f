"""While the intake works through a backlog the merge stage gathers longer batches
(`RestartingStage.gather` with `catch_up_ms`, `merge_stage.from_backlog`): the intake
marks the partials of a full batch with `BEHIND_HEADER`, and a merge batch whose
partials all carry it waits up to five flush intervals instead of one. Against a
real broker: the header reaches the partials topic, and gather keeps waiting only
while every record it holds is marked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream_app.checkpoint import Checkpointer, Folded
from stream_app.core.scoreboard import ChannelPartial
from stream_app.internal_topics import BEHIND_HEADER, partials_topic
from stream_app.kafka.stage import RestartingStage
from stream_app.merge_stage import from_backlog
from tests.integration.exactness import exactly_once
from tests.integration.harness import RUN, consume_all, create_topic, run_sync

pytestmark = [pytest.mark.integration]


def test_the_partials_of_a_full_intake_batch_carry_the_backlog_header(bootstrap: str) -> None:
    app_id = f"cx-behind-{RUN}"
    topic = partials_topic(app_id)

    async def scenario() -> None:
        await create_topic(bootstrap, topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)  # no offsets in these batches
        transactions = exactly_once()  # the embedded broker has neither transactions nor idempotence
        checkpointer = Checkpointer(app_id, transactions, transactions, {"bootstrap_servers": bootstrap})
        try:
            await checkpointer.start(f"{app_id}-warmup")
            await checkpointer.assign({0})
            for series, behind in (("email", True), ("chat", False)):
                folded = Folded(now=0)
                part = folded.part(0)
                part.partials[series] = ChannelPartial()
                part.partials[series].add_live("waiting", 1_000, 1)
                part.behind = behind
                await checkpointer.commit(folded, consumer, f"{app_id}-intake", lambda _: None)
        finally:
            await checkpointer.close()

    run_sync(scenario())
    records = run_sync(consume_all(bootstrap, topic, isolation_level="read_committed"))
    marked = {record.key.decode(): from_backlog(record) for record in records}
    assert marked == {"email": True, "chat": False}
    assert [tuple(h) for r in records for h in r.headers] == [BEHIND_HEADER]


class _Stage(RestartingStage):
    name = "gather-test"


def _gathered(bootstrap: str, headers: list[tuple[str, bytes]] | None) -> int:
    """Records the first non-empty gather returns: one record, then a second 2 s
    later; a gather waits 0.5 s after its first record, or up to 30 s while every
    record is behind (limit 2: the second record ends it)."""
    topic = f"cx-gather-{RUN}-{'behind' if headers else 'live'}"

    async def scenario() -> int:
        await create_topic(bootstrap, topic)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await producer.start()
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            await producer.send_and_wait(topic, b"first", headers=headers)
            stage = _Stage()

            async def first_batch() -> dict[Any, list[Any]]:
                while True:
                    records, _ = await stage.gather(consumer, 2, 500, catch_up_ms=30_000, behind=from_backlog)
                    if records:
                        return records

            gathering = asyncio.ensure_future(first_batch())
            await asyncio.sleep(2.0)
            await producer.send_and_wait(topic, b"second", headers=headers)
            records = await asyncio.wait_for(gathering, 60)
            return sum(len(batch) for batch in records.values())
        finally:
            await consumer.stop()
            await producer.stop()

    return run_sync(scenario())


def test_gather_waits_longer_while_every_record_is_behind(bootstrap: str) -> None:
    assert _gathered(bootstrap, [BEHIND_HEADER]) == 2, "a backlog batch waits for the next partial"
    assert _gathered(bootstrap, None) == 1, "live partials are batched for one flush interval"
