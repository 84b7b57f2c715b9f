"""The merge stage's consumer commits no offset for a partial Faust skipped at a
rebalance (stream_app/merge_consumer.py). Faust's real consumer object, no broker:
acknowledging and picking the offset to commit need none."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP, Message

from stream_app.merge_consumer import MergeConsumer, ReadCommittedApp

TOPIC = "cx-test-partials"
TP0 = TP(TOPIC, 0)


async def _consumer() -> tuple[ReadCommittedApp, Any]:
    app = ReadCommittedApp("cx-test-merge-consumer", broker="kafka://127.0.0.1:1")
    app.topics.add(app.topic(TOPIC))
    await app.topics._update_indices()  # as Faust does when it subscribes: acks on for TOPIC
    app.flow_control.resume()  # as after a worker's first recovery
    consumer = app.consumer
    assert isinstance(consumer, MergeConsumer)
    return app, consumer


def _message(offset: int, generation: int) -> Message:
    return Message(TOPIC, 0, offset, 0.0, 0, None, b"phone", b"{}", None, tp=TP0, generation_id=generation)


def _ack_all(consumer: Any, offsets: range, generation: int) -> None:
    for offset in offsets:
        message = _message(offset, generation)
        consumer.track_message(message)
        consumer.ack(message)


def test_partials_acknowledged_while_the_flow_runs_are_committed_up_to_the_first_gap() -> None:
    async def run() -> None:
        app, consumer = await _consumer()
        _ack_all(consumer, range(0, 10), app.consumer_generation_id)
        assert consumer._new_offset(TP0) == 10
        assert not consumer._unacked_messages

    asyncio.run(run())


def test_a_partial_skipped_while_the_flow_is_stopped_is_not_committed() -> None:
    async def run() -> None:
        app, consumer = await _consumer()
        _ack_all(consumer, range(0, 10), app.consumer_generation_id)
        app.flow_control.suspend()  # a rebalance began: Faust's streams skip and ack what they get
        _ack_all(consumer, range(10, 12), app.consumer_generation_id)
        assert consumer._new_offset(TP0) == 10  # the next owner reads 10 and 11 again
        assert not consumer._unacked_messages  # and Faust's wait_empty does not wait for them

    asyncio.run(run())


def test_a_partial_of_an_earlier_generation_is_not_committed_after_the_partition_comes_back() -> None:
    async def run() -> None:
        app, consumer = await _consumer()
        _ack_all(consumer, range(0, 10), app.consumer_generation_id)
        consumer._committed_offset[TP0] = 10  # what committing 0..9 leaves
        await consumer.on_partitions_revoked({TP0})  # forgets the committed offset of TP0
        app.consumer_generation_id += 1  # assigned again, in the next generation
        _ack_all(consumer, range(20, 22), app.consumer_generation_id - 1)  # fetched before the rebalance
        assert consumer._new_offset(TP0) is None  # nothing to commit: 10..21 are read again

    asyncio.run(run())
