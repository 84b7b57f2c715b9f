"""A folded batch and its commit: all of a partition's work, or none of it.

For each input partition number p an intake batch carries (`PartitionBatch`):

    partials (one per channel)  → <app_id>-partials
    changed entity states       → <app_id>-intake-<kind>-changelog, partition p
    rejected records            → cx.deadletter
    records re-keyed elsewhere  → <app_id>-intake-<kind>-repartition
    input offsets of partition p (input and repartition topics) → the intake group

and a merge batch (stream_app/merge_stage.py), for partials partition p:

    changed table records       → <app_id>-scores-changelog, <app_id>-alert-state-changelog, partition p
    alert messages              → cx.alerts
    partials offsets of p       → the merge group

and they are committed together. With transactions (`exactly_once`) each
partition number has a transactional producer of its own per stage,
`<app_id>-<stage>-p<p>` (Kafka Streams' first exactly-once design): the worker that is assigned p
initialises that producer, which fences the previous owner of p. A worker that
stalled past its session (GC pause, VM freeze, SIGSTOP) and wakes up with a
batch of p can then no longer commit it: its transaction is aborted, its
producer fenced. Without transactions (`at_least_once`, brokers like the
embedded one) every record is acknowledged before the offsets are committed:
nothing is lost, a crash between the two can count a batch twice.

In both modes a record that is not acknowledged (too large, refused, broker
gone) fails the commit before any offset of its partition is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError, MessageSizeTooLargeError, ProducerFenced

from stream_app.core.intake import Rejected
from stream_app.core.partial_codec import encode_partial
from stream_app.core.scoreboard import ChannelPartial
from stream_app.core.store import Change
from stream_app.internal_topics import BEHIND_HEADER, changelog_topic, partials_topic, transactional_id

log = logging.getLogger("stream_app.checkpoint")
DEADLETTER_TOPIC = "cx.deadletter"


@dataclass
class PartitionBatch:
    """What one input partition number's part of a batch must write."""

    partials: dict[str, ChannelPartial] = field(default_factory=dict)
    #: kind → changelog records of this partition
    changes: dict[str, list[Change]] = field(default_factory=dict)
    #: changelog topic → records of this partition (the merge stage's tables)
    tables: dict[str, list[Change]] = field(default_factory=dict)
    #: (topic, key, value, headers): records for other topics (the merge stage's alerts)
    messages: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    #: The intake batch was full (a backlog): its partials carry `BEHIND_HEADER`.
    behind: bool = False
    #: (input topic, record, why)
    rejected: list[tuple[str, Any, Rejected]] = field(default_factory=list)
    #: (repartition topic, target partition, entity id, record)
    forwards: list[tuple[str, int, str, Any]] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    #: (input topic, outcome) → records; counted once this part is committed
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    #: kind → contacts closed without their start / open state dropped by the TTL
    incomplete: dict[str, int] = field(default_factory=dict)
    open_expired: dict[str, int] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (
            self.partials
            or self.rejected
            or self.forwards
            or self.offsets
            or self.messages
            or any(self.changes.values())
            or any(self.tables.values())
        )


@dataclass
class Folded:
    """A folded batch: the work of each input partition number it touched."""

    now: int
    parts: dict[int, PartitionBatch] = field(default_factory=dict)

    def part(self, partition: int) -> PartitionBatch:
        found = self.parts.get(partition)
        if found is None:
            found = self.parts[partition] = PartitionBatch()
        return found

    def is_empty(self) -> bool:
        return all(part.is_empty() for part in self.parts.values())


class Checkpointer:
    """A stage's producers and the commit of a folded batch."""

    def __init__(
        self,
        app_id: str,
        transactional: bool,
        idempotent: bool,
        client_options: dict[str, Any],
        stage: str = "intake",
    ) -> None:
        self.app_id = app_id
        self.stage = stage
        self.transactional = transactional
        self.idempotent = idempotent
        self.options = client_options
        #: partition number → its transactional producer (exactly_once)
        self.producers: dict[int, AIOKafkaProducer] = {}
        #: the one producer of at_least_once
        self.shared: AIOKafkaProducer | None = None

    def _producer(self, transactional_id: str | None) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            acks="all",
            linger_ms=5,
            enable_idempotence=self.idempotent or transactional_id is not None,
            transactional_id=transactional_id,
            # A worker that dies mid-transaction blocks read_committed readers of
            # its partitions until the broker aborts it: keep that short.
            transaction_timeout_ms=10_000,
            max_batch_size=262_144,
            **self.options,
        )

    async def start(self, warmup_id: str) -> None:
        """Non-transactional: the one producer. Transactional: initialise a throw-away
        transactional producer first, so the broker's transaction coordinator (and
        `__transaction_state`, created on first use: seconds on a new cluster) is
        ready before this worker joins its group: the per-partition producers are
        initialised inside the rebalance callback, which must finish within the
        session timeout."""
        if not self.transactional:
            self.shared = self._producer(None)
            await self.shared.start()
            return
        warmup = self._producer(warmup_id)
        await warmup.start()
        await warmup.stop()

    async def assign(self, partitions: set[int]) -> None:
        """Start the transactional producer of each newly assigned partition number:
        its initialisation fences (and aborts the open transaction of) any other
        worker that still holds it."""
        if not self.transactional:
            return
        for partition in sorted(partitions - set(self.producers)):
            producer = self._producer(transactional_id(self.app_id, self.stage, partition))
            await producer.start()
            self.producers[partition] = producer

    async def revoke(self, partitions: set[int]) -> None:
        for partition in partitions:
            producer = self.producers.pop(partition, None)
            if producer is not None:
                await _stop(producer)

    async def close(self) -> None:
        await self.revoke(set(self.producers))
        if self.shared is not None:
            await self.shared.stop()
            self.shared = None

    async def commit(
        self,
        folded: Folded,
        consumer: AIOKafkaConsumer,
        group: str,
        on_committed: Callable[[PartitionBatch], None],
    ) -> None:
        """Commit every partition's part of the batch, calling `on_committed` for each
        part once it is durable; raises if any part failed (that part committed
        nothing: its records are fetched and folded again)."""
        parts = [(p, part) for p, part in sorted(folded.parts.items()) if not part.is_empty()]
        if self.transactional:
            results = await asyncio.gather(
                *(self._commit_transaction(p, part, group) for p, part in parts), return_exceptions=True
            )
            failed = None
            for (_, part), result in zip(parts, results, strict=True):
                if isinstance(result, BaseException):
                    failed = failed or result
                else:
                    on_committed(part)
            if failed is not None:
                raise failed
            return
        producer = self.shared
        assert producer is not None, "start() first"
        # Without a transaction, messages for other topics (alerts) are acknowledged
        # before the state that records them was sent: a failure in between sends
        # them again after the restart rather than never.
        await _acknowledged(
            [
                await producer.send(topic, key=key, value=value, headers=headers)
                for _, part in parts
                for topic, key, value, headers in part.messages
            ],
            "",
        )
        deliveries: list[Awaitable[Any]] = []
        for partition, part in parts:
            deliveries.extend(await self._send(producer, partition, part, messages=False))
        await _acknowledged(deliveries, "")
        offsets = {tp: offset for _, part in parts for tp, offset in part.offsets.items()}
        if offsets:
            await consumer.commit(offsets)
        for _, part in parts:
            on_committed(part)

    async def _commit_transaction(self, partition: int, part: PartitionBatch, group: str) -> None:
        producer = self.producers.get(partition)
        if producer is None:  # revoked while the batch was in flight: fetched again by its owner
            raise KafkaError(f"{self.stage}: partition {partition} is no longer assigned here")
        await producer.begin_transaction()
        try:
            try:
                await _acknowledged(await self._send(producer, partition, part), ", transaction aborted")
                if part.offsets:
                    await producer.send_offsets_to_transaction(part.offsets, group)
                await producer.commit_transaction()
            except IllegalOperation as exc:
                # The producer was fenced while the batch was being handed over: its
                # sender marked the transaction failed between two of our sends (seen
                # when a worker rejoined and fenced four partitions at once). Not a
                # KafkaError in aiokafka, so the stage would crash instead of restarting.
                raise ProducerFenced(f"{self.stage}: partition {partition}: {exc}") from exc
        except BaseException:
            if not await asyncio.shield(_abort(producer, self.stage)):
                # Fenced (another worker owns the partition now) or stuck: this
                # producer can commit nothing more. The partition gets a new one if
                # it is assigned here again.
                if self.producers.get(partition) is producer:
                    del self.producers[partition]
                await asyncio.shield(_stop(producer))
            raise

    async def _send(
        self, producer: AIOKafkaProducer, partition: int, part: PartitionBatch, messages: bool = True
    ) -> list[Awaitable[Any]]:
        """Hand every record of `part` to the producer; returns their delivery futures."""
        marked = [BEHIND_HEADER] if part.behind else None
        topic = partials_topic(self.app_id)
        deliveries: list[Awaitable[Any]] = [
            await producer.send(topic, key=c.encode(), value=encode_partial(p), headers=marked)
            for c, p in part.partials.items()
        ]
        for kind, records in part.changes.items():
            topic = changelog_topic(self.app_id, kind)
            deliveries.extend(await _send_changes(producer, topic, partition, records))
        for topic, records in part.tables.items():
            deliveries.extend(await _send_changes(producer, topic, partition, records))
        for topic, key, value, headers in part.messages if messages else ():
            deliveries.append(await producer.send(topic, key=key, value=value, headers=headers))
        for topic, message, why in part.rejected:
            key, origin = origin_of(topic, message)
            origin = [h for h in origin if h[0] != "x-source-key"]  # it is the record's key
            deliveries.append(
                await producer.send(
                    DEADLETTER_TOPIC, key=key, value=message.value, headers=[*_why(why), *origin]
                )
            )
        for topic, target, entity_id, message in part.forwards:
            _, origin = origin_of(topic, message)
            deliveries.append(
                await producer.send(
                    topic, key=entity_id.encode(), value=message.value, partition=target, headers=origin
                )
            )
        return deliveries


async def _acknowledged(deliveries: list[Awaitable[Any]], what: str) -> None:
    """Every record acknowledged, or the commit fails (aiokafka's commit_transaction
    alone would commit a transaction despite a failed send)."""
    try:
        await asyncio.gather(*deliveries)
    except KafkaError as exc:
        log.warning(
            "batch not committed (%s: %s)%s; its records are fetched again",
            type(exc).__name__,
            exc,
            what,
        )
        raise


async def _send_changes(
    producer: AIOKafkaProducer, topic: str, partition: int, changes: list[Change]
) -> list[Any]:
    """Changelog records in as few batches as fit: far cheaper than one `send` each.
    They go to the partition of the input they belong to."""
    futures = []
    batch = producer.create_batch()
    for key, value in changes:
        if batch.append(key=key.encode(), value=value, timestamp=None) is None:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key.encode(), value=value, timestamp=None) is None:
                raise MessageSizeTooLargeError(f"{topic}: a {len(value or b'')}-byte state record")
    if batch.record_count():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


def _why(rejected: Rejected) -> list[tuple[str, bytes]]:
    return [
        ("x-error-reason", rejected.reason.encode()),
        ("x-error-detail", rejected.detail.encode("utf-8", "replace")),
    ]


_ORIGIN = ("x-source-topic", "x-source-partition", "x-source-offset", "x-source-key")


def origin_of(topic: str, message: Any) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    """The original key and where the record entered (`x-source-*` headers): read
    from a re-keyed record's headers, or from the input record itself."""
    carried = {name: value for name, value in (message.headers or ()) if name in _ORIGIN}
    if "x-source-topic" in carried:
        key = carried.pop("x-source-key", None)
        return key, list(carried.items())
    headers = [
        ("x-source-topic", topic.encode()),
        ("x-source-partition", str(message.partition).encode()),
        ("x-source-offset", str(message.offset).encode()),
    ]
    if message.key is not None:
        headers.append(("x-source-key", message.key))
    return message.key, headers


#: How long an abort or a producer's stop may take before the producer is given up.
GIVE_UP_S = 10.0


async def _abort(producer: AIOKafkaProducer, stage: str) -> bool:
    """Abort the producer's open transaction; False when the producer cannot be
    used again: fenced by the partition's new owner (its transaction state is
    fatal: aiokafka refuses even an abort, with an AssertionError) or no answer.
    Either way nothing of the batch was committed: the next owner's initialisation
    aborts the open transaction."""
    if _fenced(producer):
        log.warning("%s: producer fenced by the partition's new owner; its batch is dropped", stage)
        return False
    try:
        await asyncio.wait_for(producer.abort_transaction(), GIVE_UP_S)
    except (KafkaError, TimeoutError, AssertionError) as exc:
        log.warning("%s: abort failed: %s: %s", stage, type(exc).__name__, exc)
        return False
    return not _fenced(producer)


def _fenced(producer: AIOKafkaProducer) -> bool:
    manager = getattr(producer, "_txn_manager", None)  # aiokafka keeps the state here
    return manager is not None and bool(manager.is_fatal_error())


async def _stop(producer: AIOKafkaProducer) -> None:
    """Stop a producer; one that does not stop in time is left to the collector."""
    try:
        await asyncio.wait_for(producer.stop(), GIVE_UP_S)
    except (KafkaError, TimeoutError) as exc:
        log.warning("a producer did not stop cleanly: %s: %s", type(exc).__name__, exc)
