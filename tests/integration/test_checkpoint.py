"""The intake's batch commit against a real broker with transactions: a worker whose
producer was fenced by a partition's new owner fails the commit with a Kafka
error (so the intake starts again from the committed offsets) and never commits
through that producer again.

Seen in CI (test_stall): after a stall past its session the worker's abort of the
fenced transaction raised aiokafka's AssertionError (a fatal transaction state
refuses an abort), which crashed the worker; on the other worker an abort never
answered and the rebalance waited for it for ever.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from stream_app.checkpoint import Checkpointer, Folded, PartitionBatch
from stream_app.internal_topics import changelog_topic
from tests.integration.exactness import exactly_once
from tests.integration.harness import RUN, consume_all, create_topic, run_sync

pytestmark = [pytest.mark.integration]


def _batch(key: str) -> Folded:
    folded = Folded(now=0)
    folded.part(0).changes["ticket"] = [(key, b'{"state": 1}')]
    return folded


def test_a_fenced_producer_fails_the_commit_cleanly_and_is_dropped(bootstrap: str) -> None:
    if not exactly_once():
        pytest.skip("the embedded broker (tansu) has no transactions: nothing is fenced")
    app_id = f"cx-fence-{RUN}"
    topic = changelog_topic(app_id, "ticket")
    options = {"bootstrap_servers": bootstrap}

    async def scenario() -> tuple[list[PartitionBatch], set[int], set[int]]:
        await create_topic(bootstrap, topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)  # offsets: none in these batches
        stale = Checkpointer(app_id, True, True, options)
        fresh = Checkpointer(app_id, True, True, options)
        committed: list[PartitionBatch] = []
        try:
            await stale.start(f"{app_id}-warmup-1")
            await stale.assign({0})
            await fresh.start(f"{app_id}-warmup-2")
            await fresh.assign({0})  # fences the stale worker's producer of partition 0
            with pytest.raises(KafkaError):
                await stale.commit(_batch("stale"), consumer, f"{app_id}-intake", committed.append)
            left = set(stale.producers)
            await fresh.commit(_batch("fresh"), consumer, f"{app_id}-intake", committed.append)
            await stale.assign({0})  # the partition comes back later: a new producer
            again = set(stale.producers)
            await stale.commit(_batch("again"), consumer, f"{app_id}-intake", committed.append)
        finally:
            await stale.close()
            await fresh.close()
        return committed, left, again

    committed, left, again = run_sync(scenario())
    assert left == set(), "a fenced producer must not be used for another commit"
    assert again == {0}
    assert len(committed) == 2, "the new owner's batch and the later one commit"
    keys = sorted(
        record.key for record in run_sync(consume_all(bootstrap, topic, isolation_level="read_committed"))
    )
    assert keys == [b"again", b"fresh"], "the fenced batch committed nothing"
