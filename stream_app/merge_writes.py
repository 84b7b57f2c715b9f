"""Writes to the merge stage's `scores` table without Faust's per-record send path.

`table[key] = value` in Faust hands each changelog record to the producer's
buffer, which a background task sends one at a time, encoding through Faust's
codecs (stdlib `json`); the stream stops taking records while that buffer is over
100. A partial touches up to a few hundred records (one per bucket it carries and
per live-queue hour chunk), so that path took about a tenth of the worker
(py-spy, docs/performance.md). Here the record goes into the table's store at
once and its changelog record, encoded with orjson (JSON, as the table reads it
back), is handed to the app's producer at most every `SEND_INTERVAL_MS`, once per
key with its newest value: a bucket or live-queue chunk that 20 partials changed in
that time is written once, not 20 times.

Durability: a partial's offset may be committed only once its records are
acknowledged. Faust flushes its producer before it commits, but records handed
to the producer this way were not always durable by then: the crash test lost
counts in 2 of 2 runs with that alone (docs/performance.md). So the delivery
futures are kept (`in_flight`) and the consumer awaits them (`durable`) before
every offset commit (`merge_consumer.MergeConsumer._commit_offsets`); a
failed delivery raises there and nothing is committed; what is still pending is
sent first. One send runs at a time, so the newest version of a record is also
the last written.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

#: The longest a changed record waits before its changelog record is handed to the
#: producer (and at most this many records wait): one record per key in that time,
#: however many partials changed it.
SEND_INTERVAL_MS = 500
MAX_PENDING = 20_000


class TableWrites:
    """Pending writes to one Faust table: `put` and `delete` change the table at
    once; `send` hands their changelog records to the producer, one per key with
    its newest value however often it changed since the last send (a record cache,
    as Kafka Streams keeps in front of its changelogs).

    `table`: a Faust table (its `data` store, its `changelog_topic`); `partition`:
    the changelog partition of the record, its series' partials partition.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        #: key → (changelog partition, newest value; None: deleted), in first-change order.
        self.pending: dict[str, tuple[int, Any]] = {}
        #: Delivery futures of records handed to the producer and not yet known durable.
        self.in_flight: list[Any] = []
        self.last_sent_ms = 0
        #: One send at a time: two overlapping sends could hand an older version of a
        #: record to the producer after a newer one.
        self._sending = asyncio.Lock()

    def put(self, key: str, value: dict[str, Any], partition: int) -> None:
        self.table.data[key] = value
        self.pending[key] = (partition, value)

    def delete(self, key: str, partition: int) -> None:
        """Remove a record (a tombstone in the changelog); nothing when it is absent."""
        if key in self.table.data:
            del self.table.data[key]
            self.pending[key] = (partition, None)

    def due(self, now_ms: int) -> bool:
        """Whether the pending records should be sent now (`SEND_INTERVAL_MS`, `MAX_PENDING`)."""
        return bool(self.pending) and (
            now_ms - self.last_sent_ms >= SEND_INTERVAL_MS or len(self.pending) >= MAX_PENDING
        )

    def drop(self) -> None:
        """Forget the pending records (the table's partitions were revoked: their
        partials' offsets were not committed, since `durable` sends before every
        commit, so the next owner applies those partials again)."""
        self.pending = {}

    async def send(self, producer: Any, now_ms: int = 0) -> int:
        """Hand the pending changelog records to `producer` (Faust's) and keep their
        delivery futures for `durable`; returns how many."""
        async with self._sending:
            pending, self.pending = self.pending, {}
            self.last_sent_ms = now_ms
            topic = self.table.changelog_topic.get_topic_name()
            dumps = orjson.dumps
            for key, (partition, value) in pending.items():
                body = None if value is None else dumps(value)
                self.in_flight.append(await producer.send(topic, dumps(key), body, partition, None, None))
            return len(pending)

    async def durable(self, producer: Any) -> None:
        """Send what is pending, then wait until every record sent so far is
        acknowledged by the broker; raises the first delivery error (the offsets
        must then not be committed)."""
        await self.send(producer, self.last_sent_ms)
        in_flight, self.in_flight = self.in_flight, []
        if in_flight:
            await asyncio.gather(*in_flight)
