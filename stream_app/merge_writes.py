"""Writes to the merge stage's `scores` table without Faust's per-record send path.

`table[key] = value` in Faust hands each changelog record to the producer's
buffer, which a background task sends one at a time, encoding through Faust's
codecs (stdlib `json`); the stream stops taking records while that buffer is over
100. A partial touches up to a few hundred records (one per bucket it carries and
per live-queue hour chunk), so that path took about a tenth of the worker
(py-spy, docs/performance.md). Here the record goes into the table's store at
once and its changelog record, encoded with orjson (JSON, as the table reads it
back), is handed to the app's producer when the partial is done.

Durability: a partial's offset may be committed only once its records are
acknowledged. Faust flushes its producer before it commits, but records handed
to the producer this way were not always durable by then: the crash test lost
counts in 2 of 2 runs with that alone (docs/performance.md). So the delivery
futures are kept (`in_flight`) and the consumer awaits them (`durable`) before
every offset commit (`merge_consumer.MergeConsumer._commit_offsets`); a
failed delivery raises there and nothing is committed. The writes of one
partial are handed over before the agent takes the next partial, in order, so
the newest version of a record is also the last written.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


class TableWrites:
    """Pending writes to one Faust table: `put` and `delete` change the table at
    once; `send` hands their changelog records to the producer.

    `table`: a Faust table (its `data` store, its `changelog_topic`); `partition`:
    the changelog partition of the record, its series' partials partition.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.pending: list[tuple[int, bytes, bytes | None]] = []
        #: Delivery futures of records handed to the producer and not yet known durable.
        self.in_flight: list[Any] = []

    def put(self, key: str, value: dict[str, Any], partition: int) -> None:
        self.table.data[key] = value
        self.pending.append((partition, orjson.dumps(key), orjson.dumps(value)))

    def delete(self, key: str, partition: int) -> None:
        """Remove a record (a tombstone in the changelog); nothing when it is absent."""
        if key in self.table.data:
            del self.table.data[key]
            self.pending.append((partition, orjson.dumps(key), None))

    async def send(self, producer: Any) -> int:
        """Hand the pending changelog records to `producer` (Faust's) and keep their
        delivery futures for `durable`; returns how many."""
        pending, self.pending = self.pending, []
        topic = self.table.changelog_topic.get_topic_name()
        for partition, key, value in pending:
            self.in_flight.append(await producer.send(topic, key, value, partition, None, None))
        return len(pending)

    async def durable(self) -> None:
        """Wait until every record sent so far is acknowledged by the broker; raises
        the first delivery error (the offsets must then not be committed)."""
        in_flight, self.in_flight = self.in_flight, []
        if in_flight:
            await asyncio.gather(*in_flight)
