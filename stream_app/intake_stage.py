"""Stage 1 of the pipeline on plain aiokafka: input events in, partials out.

Why not a Faust agent: Faust's consumer path tops out near 10,000 events/s on
our machines even for agents that do nothing (docs/performance.md), well under
what the pure core folds. Here a batch is fetched with `getmany`, folded by
`Intake` into a `Batch` record cache, and committed by `checkpoint.Checkpointer`:
per input partition, its partials, changed entity states, dead letters,
re-keyed records and input offsets together (one Kafka transaction each with
`exactly_once`), so a crash anywhere leaves either all of a partition's batch
or none of it, and the restarted worker restores exactly the state that goes
with its committed offsets.

Records that are not on their entity's partition (no key, another key) are
forwarded to `<app_id>-intake-<kind>-repartition` keyed by the entity id and
folded when they arrive there: one entity's state never splits.

State restore on assignment reads the changelog partition (read_committed) up
to its end; a revoked partition's state is dropped at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache, partial
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.partitioner import murmur2

from stream_app.checkpoint import Checkpointer, Folded, PartitionBatch
from stream_app.config import Settings
from stream_app.core import lifecycle
from stream_app.core.intake import INPUTS, Accepted, Intake, Rejected
from stream_app.core.scoreboard import ChannelPartial, Partials
from stream_app.core.store import Batch, StateStore
from stream_app.internal_topics import changelog_topic, intake_group, partials_topic, repartition_topic
from stream_app.kafka.changelog import read_to_end, seek_to_committed
from stream_app.kafka.stage import RestartingStage, group_consumer, restorer
from stream_app.metrics import Instruments
from stream_app.state import open_stores

log = logging.getLogger("stream_app.intake")

#: Most input records folded per batch (only reached with a backlog: live traffic is
#: flushed every STREAM_APP_FLUSH_INTERVAL). The fold runs on the event loop without
#: yielding: 20,000 took stage 1 from 10.3 to 5.6 s for the 100,000 bench events, but
#: held the loop ~2 s per batch, long enough for /metrics to time out under overload
#: (test_overload caught it). More per batch needs a fold that yields first.
INTAKE_BATCH = 5000
EXPIRY_SWEEP_MS = 60_000
__all__ = ["IntakeStage", "changelog_topic", "intake_group", "now_ms", "partials_topic", "repartition_topic"]
KINDS = tuple(kind for _, kind, _ in INPUTS.values())


#: Stored contacts relabelled per batch after a restore (a changed queue list may
#: move all of them: spread over batches, not one huge transaction; ~16 µs each).
RELABEL_CHUNK = 5_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@lru_cache(maxsize=1 << 16)
def entity_partition(entity_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the Java client) gives a
    record keyed by `entity_id`: where all of one ticket's/chat's events are folded.
    Cached: aiokafka's murmur2 is pure Python (about 3% of a worker's time uncached),
    and a contact's events come close together."""
    return int(murmur2(entity_id.encode()) & 0x7FFFFFFF) % partitions


class IntakeStage(RestartingStage):
    """Runs stage 1 until the worker stops; rebuilds itself after a broker failure."""

    name = "intake"

    def __init__(
        self,
        settings: Settings,
        intake: Intake,
        instruments: Instruments,
        on_sent: Callable[[dict[str, ChannelPartial], int], None],
    ) -> None:
        super().__init__()
        self.settings = settings
        self.intake = intake
        self.instruments = instruments
        self.on_sent = on_sent
        self.transactional = settings.guarantee == "exactly_once"
        self.stores: dict[str, StateStore] = open_stores(
            settings, {kind: partial(lifecycle.expires_at, kind, keep=intake.keep) for kind in KINDS}
        )
        #: topic consumed → (entity kind, input topic it stands for): the input topics and
        #: their repartition topics, co-partitioned (same count, range assignment).
        self.sources: dict[str, tuple[str, str]] = {}
        for topic, (_, kind, _) in INPUTS.items():
            self.sources[topic] = (kind, topic)
            self.sources[repartition_topic(settings.app_id, kind)] = (kind, topic)
        #: Last offset folded per input partition (for the lag metric).
        self.handled: dict[tuple[str, int], int] = {}
        self.last_sweep = 0
        #: (kind, partition) → stored keys still to relabel (`Intake.relabel_keys`):
        #: every state of a partition is checked once after it is restored.
        self.relabel_due: dict[tuple[str, int], list[str]] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.pending: asyncio.Queue[Folded] = asyncio.Queue(maxsize=1)
        #: Held from fetch check to queueing, and by rebalance callbacks: partitions
        #: never move while a batch is between its fetch and the commit queue.
        self.folding = asyncio.Lock()
        self.committer: asyncio.Task[None] | None = None
        self.checkpointer = Checkpointer(settings.app_id, False, True, {})  # replaced per run

    # --- lifecycle ----------------------------------------------------------------

    async def _run_once(self) -> None:
        s = self.settings
        common = {"bootstrap_servers": s.bootstrap, **s.kafka_client_options()}
        consumer = group_consumer(
            s,
            intake_group(s.app_id),
            max_poll_records=INTAKE_BATCH,
            # Partition p of an input topic and of its repartition topic hold the same
            # entities: the range assignor gives both to the same worker.
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        restoring = restorer(s)
        checkpointer = self.checkpointer = Checkpointer(
            s.app_id, self.transactional, idempotent=s.capabilities.idempotence, client_options=common
        )
        for store in self.stores.values():
            store.reset()
        self.relabel_due = {}  # filled again as the partitions are restored
        # One batch is folded while the one before it is being committed.
        self.pending = asyncio.Queue(maxsize=1)
        committer = self.committer = asyncio.create_task(self._commit_loop(self.pending, consumer))
        try:
            # Every client is closed below whichever step fails (none is left behind
            # for the garbage collector to complain about).
            await checkpointer.start(f"{s.app_id}-intake-warmup-{s.instance}")
            await restoring.start()
            await consumer.start()
            self.consumer = consumer
            consumer.subscribe(list(self.sources), listener=_Rebalance(self, restoring))
            while not self.stopping:
                if committer.done():  # a failed commit: restart from the committed offsets now
                    committer.result()
                    raise RuntimeError("the intake committer stopped")
                records, generation = await self.gather(
                    consumer, INTAKE_BATCH, self.settings.flush_interval_ms
                )
                async with self.folding:
                    if not self.is_current(generation):
                        # the partitions moved after the fetch (or are not restored yet)
                        await self._rewind(consumer)
                        continue
                    now = now_ms()
                    sweep = now - self.last_sweep >= EXPIRY_SWEEP_MS
                    folded = self._fold(records, now, sweep) if records or sweep or self.relabel_due else None
                    if folded is not None:
                        await self._until(self.pending.put(folded))
        finally:
            committer.cancel()
            self.committer = None
            self.consumer = None
            await consumer.stop()
            await restoring.stop()
            await checkpointer.close()

    async def _until(self, step: Awaitable[Any]) -> None:
        """Await `step`, unless the committer fails first (then raise its error)."""
        committer = self.committer
        if committer is None:
            await step
            return
        task = asyncio.ensure_future(step)
        done, _ = await asyncio.wait({task, committer}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done:
            task.cancel()
            committer.result()  # raises what stopped it
            raise RuntimeError("the intake committer stopped")

    async def drain(self) -> None:
        """Wait until every folded batch is committed (before partitions move)."""
        await self._until(self.pending.join())

    async def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        """Fetched records from before a rebalance are dropped: fetch again from the
        committed offsets (everything before them is committed: see `drain`)."""
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    # --- one batch ------------------------------------------------------------------

    def _fold(self, records: dict[TopicPartition, list[Any]], now: int, sweep: bool) -> Folded | None:
        """Fold a batch into the store and return what must be committed for it.

        The store is updated before the batch is committed, so the next batch can be
        folded while this one's transaction is in flight; if the commit fails, the
        stage restarts and reloads the store from the changelog.
        """
        batches = {kind: Batch(store) for kind, store in self.stores.items()}
        #: partition number → its partials: each partition's part commits on its own
        partials: dict[int, Partials] = {}
        read, apply = self.intake.read, self.intake.apply
        partition_count = self.settings.partitions
        folded = Folded(now)
        if self.relabel_due:
            self._relabel(batches, partials, now)
        for tp, messages in records.items():
            kind, topic = self.sources[tp.topic]
            forwarding = repartition_topic(self.settings.app_id, kind) if tp.topic == topic else None
            view = batches[kind].view(tp.partition)
            part = folded.part(tp.partition)
            add = self._partials(partials, tp.partition).add
            accepted = duplicates = 0
            for message in messages:
                decoded = read(topic, message.value, now)
                if isinstance(decoded, Rejected):
                    part.rejected.append((topic, message, decoded))
                    continue
                if forwarding is not None:
                    home = entity_partition(decoded.entity_id, partition_count)
                    if home != tp.partition:  # counted where it is folded
                        part.forwards.append((forwarding, home, decoded.entity_id, message))
                        continue
                outcome = apply(topic, decoded, view, now)
                if type(outcome) is Accepted:
                    add(outcome.delta, outcome.queue)
                    accepted += 1
                elif type(outcome) is Rejected:
                    part.rejected.append((topic, message, outcome))
                else:
                    duplicates += 1
            part.offsets[tp] = messages[-1].offset + 1
            counts = part.counts
            counts[(topic, "accepted")] = counts.get((topic, "accepted"), 0) + accepted
            counts[(topic, "duplicate")] = counts.get((topic, "duplicate"), 0) + duplicates
        if sweep:
            self.last_sweep = now
            for kind, batch in batches.items():
                self._expire(kind, batch, now, partials, folded)
        # A full batch means more input was waiting: the merge stage may gather its
        # partials longer (fewer, larger merge batches while the intake catches up).
        behind = sum(len(messages) for messages in records.values()) >= INTAKE_BATCH
        for partition, ready in partials.items():
            part = folded.part(partition)
            part.partials = ready.drain()
            part.behind = behind
        for kind, batch in batches.items():
            self._count_incomplete(kind, batch, folded)
            changes = batch.changes()
            for partition, records_of in changes.items():
                folded.part(partition).changes[kind] = records_of
            batch.commit(changes)
        if folded.is_empty():
            return None
        return folded

    @staticmethod
    def _count_incomplete(kind: str, batch: Batch, folded: Folded) -> None:
        """Contacts this batch left closed without their start (before: the store)."""
        if kind == "survey":
            return
        for partition, changes in batch.dirty.items():
            found = sum(
                1
                for key, after in changes.items()
                if after is not None
                and lifecycle.incomplete(kind, after)  # cheap: looks the old state up only then
                and lifecycle.became_incomplete(kind, batch.store.get(key, partition), after)
            )
            if found:
                counted = folded.part(partition).incomplete
                counted[kind] = counted.get(kind, 0) + found

    def _partials(self, partials: dict[int, Partials], partition: int) -> Partials:
        found = partials.get(partition)
        if found is None:
            found = partials[partition] = Partials(self.intake.timeline)
        return found

    async def _commit_loop(self, queue: asyncio.Queue[Folded], consumer: AIOKafkaConsumer) -> None:
        """Commits folded batches one by one, in order."""
        group = intake_group(self.settings.app_id)
        while True:
            folded = await queue.get()
            await self.checkpointer.commit(folded, consumer, group, partial(self._committed, folded.now))
            self.backoff.reset()
            queue.task_done()

    def _committed(self, now: int, part: PartitionBatch) -> None:
        """A partition's part of a batch is durable: move the lag mark and the counters."""
        for tp, next_offset in part.offsets.items():
            self.handled[(tp.topic, tp.partition)] = next_offset - 1
        self.on_sent(part.partials, now)
        self._count(part)

    def _relabel(self, batches: dict[str, Batch], partials: dict[int, Partials], now: int) -> None:
        """Move up to RELABEL_CHUNK stored contacts (in all, this batch) to the queue
        label the configuration gives them now (STREAM_APP_QUEUES may have changed
        since they were counted), committed with this batch. A contact with an event
        before its turn is moved by that event (`Intake.apply` moves a contact whose
        label changed and stores the new one), so the order does not matter."""
        budget = RELABEL_CHUNK
        for (kind, partition), keys in list(self.relabel_due.items()):
            if budget <= 0:
                break
            chunk, rest = keys[:budget], keys[budget:]
            budget -= len(chunk)
            delta = self.intake.relabel_keys(kind, batches[kind].view(partition), chunk, now)
            self._partials(partials, partition).add(delta, "")  # queue series in the facts
            if rest:
                self.relabel_due[(kind, partition)] = rest
            else:
                del self.relabel_due[(kind, partition)]

    def _expire(
        self, kind: str, batch: Batch, now: int, partials: dict[int, Partials], folded: Folded
    ) -> None:
        """Drop state past its deadline (`lifecycle.Keep`: closed work after retention
        and the reopen window, open work after STREAM_APP_OPEN_STATE_TTL), retracting
        what it still adds to the backlog and counting the open ones dropped."""
        for partition, keys in batch.store.due(now).items():
            _, retract, still_open = self.intake.expire_keys(kind, batch.view(partition), keys, now)
            self._partials(partials, partition).add(retract, "")  # queue series in the facts
            if still_open:
                expired = folded.part(partition).open_expired
                expired[kind] = expired.get(kind, 0) + still_open

    def _count(self, part: PartitionBatch) -> None:
        """Counters move only once the part is committed."""
        instruments = self.instruments
        for (topic, outcome), n in part.counts.items():
            if n:
                instruments.events.labels(topic, outcome).inc(n)
        for topic, _, why in part.rejected:
            instruments.events.labels(topic, "dead_letter").inc()
            instruments.dead_letters.labels(topic, why.reason).inc()
            log.debug("dead-letter %s %s: %s", topic, why.reason, why.detail)
        for kind, n in part.incomplete.items():
            instruments.incomplete.labels(kind).inc(n)
        for kind, n in part.open_expired.items():
            instruments.open_expired.labels(kind).inc(n)
        if part.partials:
            instruments.partials.inc(len(part.partials))

    # --- state restore ----------------------------------------------------------------

    async def restore(self, restorer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> None:
        """Load each assigned input partition's state from its changelog partition."""
        wanted = {
            TopicPartition(changelog_topic(self.settings.app_id, kind), tp.partition): (kind, tp.partition)
            for tp in assigned
            if tp.topic in self.sources
            for kind in (self.sources[tp.topic][0],)
        }
        if not wanted:
            return
        started = time.monotonic()
        tps = list(wanted)
        for kind, partition in wanted.values():
            self.stores[kind].begin_load(partition)

        def replay(tp: TopicPartition, messages: list[Any]) -> None:
            kind, partition = wanted[tp]
            self.stores[kind].replay(partition, [(m.key.decode(), m.value) for m in messages])

        total = await read_to_end(restorer, tps, replay)
        for kind, partition in wanted.values():
            self.stores[kind].end_load(partition)
            self.relabel_due[(kind, partition)] = self.stores[kind].keys(partition)
        log.info(
            "intake state restored: %d partitions, %d changelog records in %.1f s",
            len(tps),
            total,
            time.monotonic() - started,
        )

    def revoke(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            if tp.topic in self.sources:
                self.stores[self.sources[tp.topic][0]].drop(tp.partition)
                self.relabel_due.pop((self.sources[tp.topic][0], tp.partition), None)
                self.handled.pop((tp.topic, tp.partition), None)

    def lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, records behind) for the input partitions assigned here."""
        consumer = self.consumer
        if consumer is None:
            return []
        found = []
        for tp in sorted(consumer.assignment()):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            done = self.handled.get((tp.topic, tp.partition), -1) + 1
            if tp.topic not in INPUTS:
                # Our repartition topics are written in transactions: a commit marker
                # follows each batch and is never handed out as a record, so count the
                # fetch position past it (a fetched, unfolded batch is not shown there).
                subscription = consumer._subscription.subscription  # aiokafka keeps it here
                assignment = subscription.assignment if subscription is not None else None
                state = assignment.state_value(tp) if assignment is not None else None
                if state is not None and state.has_valid_position:
                    done = max(done, state.position)
            found.append((tp.topic, tp.partition, max(0, highwater - done)))
        return found


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs in aiokafka's coordinator task: waits for the batch being folded, commits
    what is queued, and only then lets the partitions go."""

    def __init__(self, stage: IntakeStage, restorer: AIOKafkaConsumer) -> None:
        self.stage = stage
        self.restorer = restorer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.stage.folding:
            self.stage.generation += 1
            await self.stage.drain()  # their offsets are committed before another worker starts
            self.stage.revoke(list(revoked))
            await self.stage.checkpointer.revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Fence the partitions' previous owners first (their open transactions are
        aborted), then restore state and read the committed offsets: a stalled worker
        that wakes up can no longer commit behind this one's back."""
        stage = self.stage
        async with stage.folding:
            stage.generation += 1
            try:
                await stage.checkpointer.assign({tp.partition for tp in assigned})
                await stage.restore(self.restorer, list(assigned))
                consumer = stage.consumer
                if consumer is None:
                    return
                for tp, committed in (await seek_to_committed(consumer, list(assigned))).items():
                    stage.handled[(tp.topic, tp.partition)] = committed - 1
            except Exception as exc:  # aiokafka would log it and go on with this assignment
                stage.assignment_failed(exc)
                return
            stage.assignment_restored()
