"""Stage 2 of the pipeline on plain aiokafka: partials in, each channel's windows,
live queue and alert episodes out.

Each channel is owned by the one worker assigned its partials partition (group
`<app_id>-merge`). A batch of partials is applied to the in-memory `Scoreboard`
and to the `scores` / `alert-state` tables (stream_app/merge_tables.py), and is
committed by `checkpoint.Checkpointer` per partials partition: the changed table
records (changelog), the alerts it raised (`cx.alerts`) and the partials offsets
together, one Kafka transaction each with `exactly_once`. The worker that is
assigned partition p initialises `<app_id>-merge-p<p>` first, which fences the
previous owner: a worker frozen past its session (GC pause, VM freeze, SIGSTOP)
that wakes up can commit nothing, and its table writes are never read.

Why not a Faust agent and Faust tables (until 2026-12): Faust's consumer resumes
its flow from a table recovery that a rebalance cut short, so a worker that woke
from a stall applied partials to a scoreboard rebuilt from emptied tables and wrote
small figures under new offsets (the stall test lost 4,646–345,364 counts), and
it commits the offsets of messages its streams skipped. Here nothing is applied
between a revocation and the end of the next assignment's restore: the rebalance
callbacks and the batch hold one lock, and a batch fetched in an older rebalance
generation is dropped and fetched again from the committed offsets.

Without transactions (`at_least_once`, the embedded broker) the records are
acknowledged before the offsets are committed; a partial read again after a crash
is applied only to records with an older `"o"` (the offset of the last partial
applied to them), so it is not counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream_app.checkpoint import Checkpointer, Folded, PartitionBatch
from stream_app.config import Settings
from stream_app.core import alerts
from stream_app.core.agents import is_agent
from stream_app.core.aggregate import Aggregate
from stream_app.core.live_queue import chunk_is_empty, chunk_times
from stream_app.core.partial_codec import decode_partial
from stream_app.core.scoreboard import ChannelPartial, Scoreboard
from stream_app.internal_topics import BEHIND_HEADER, merge_group, partials_topic, table_changelog_topic
from stream_app.kafka.changelog import read_to_end, seek_to_committed
from stream_app.kafka.stage import RestartingStage, group_consumer, restorer
from stream_app.merge_tables import Table
from stream_app.metrics import Instruments
from stream_app.topics import ALERTS_TOPIC

log = logging.getLogger("stream_app.merge")

#: Most partials applied per batch (one transaction per partition per batch).
MERGE_BATCH = 2000
#: While every partial gathered is from an intake working through a backlog
#: (`BEHIND_HEADER`), a batch gathers this many flush intervals instead of one: each
#: touched bucket's record is written, and each window merged, once per batch.
CATCH_UP_GATHER_FLUSHES = 5
#: Scores-table keys of the live queue: "<channel>|live|<kind>|<hour>".
LIVE_PREFIX = "live|"
LIVE_CHUNK_MS = 3_600_000
#: A partial whose newest event-time bucket is older than this came from an intake
#: working through old events (a backlog after a restart or an outage).
CATCHING_UP_MS = 120_000
#: Live-queue rules hold until no such partial came for this long: until then a chat
#: whose agent's join is still in the backlog looks as if it had waited all along.
LIVE_SETTLE_MS = 30_000
#: How long an emptied scores record is kept before it is deleted: far longer than
#: a batch takes to commit.
EMPTY_KEPT_MS = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def from_backlog(message: Any) -> bool:
    """Was this partial sent by an intake batch that was full (more input waiting)?"""
    return BEHIND_HEADER in (message.headers or ())


def live_key(channel: str, kind: str, at_ms: int) -> str:
    """The scores-table key holding the live-queue times of `kind` in the hour of `at_ms`."""
    return f"{channel}|{LIVE_PREFIX}{kind}|{at_ms - at_ms % LIVE_CHUNK_MS}"


def written_ms(timestamp_ms: float, now: int) -> int:
    """When a record was written: its timestamp (ms), never later than `now` (the
    writer's clock may run ahead of ours); `now` when it carries none (<= 0)."""
    return min(now, int(timestamp_ms)) if timestamp_ms > 0 else now


class _Summed:
    """A channel's partials in one batch, summed: what they add to its buckets and
    live queue, and the offset of the last partial that changed each bucket and each
    live-queue hour chunk."""

    __slots__ = ("chunks", "moved", "offsets", "partial", "partition")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.partial = ChannelPartial()
        self.offsets: dict[int, int] = {}
        self.chunks: dict[tuple[str, int], int] = {}
        self.moved = False

    def add_bucket(self, bucket: int, agg: Aggregate, offset: int) -> None:
        """Add a freshly decoded aggregate (it is kept, not copied, when it is the first)."""
        held = self.partial.buckets.get(bucket)
        if held is None:
            self.partial.buckets[bucket] = agg
        else:
            held.merge(agg)
        self.offsets[bucket] = offset
        self.moved = True

    def add_live(self, kind: str, deltas: dict[int, int], offset: int, chunks: list[int]) -> None:
        """Add a freshly decoded partial's live-queue deltas of `kind` (hour `chunks`)."""
        self.partial.merge_live(kind, deltas)
        for chunk in chunks:
            self.chunks[(kind, chunk)] = offset
        self.moved = True


class MergeStage(RestartingStage):
    """Runs stage 2 until the worker stops; rebuilds itself after a broker failure.

    `on_reset` is called whenever the owned channels change (revocation, rebuild):
    the service forgets what it published for them.
    """

    name = "merge"

    def __init__(self, settings: Settings, instruments: Instruments, on_reset: Callable[[], None]) -> None:
        super().__init__()
        self.settings = settings
        self.timeline = settings.timeline()
        self.instruments = instruments
        self.on_reset = on_reset
        self.transactional = settings.guarantee == "exactly_once"
        self.topic = partials_topic(settings.app_id)
        self.group = merge_group(settings.app_id)
        self.scoreboard = Scoreboard(self.timeline, now_ms(), settings.windows, settings.alert_rules)
        self.scores = Table("scores")
        self.alert_states = Table("alert-state")
        #: Offset of the partial that last changed each scores-table key: replaying a
        #: partial after a crash or rebalance applies only what it had not yet applied.
        self.applied: dict[str, int] = {}
        #: Scores records that became empty (a bucket whose facts were all retracted, a
        #: live-queue chunk with no times left): key → wall-clock ms (`_write_touched`).
        self.emptied: dict[str, int] = {}
        #: The scores records the batch being applied changed, written once at its end:
        #: key → (channel, bucket, partition, offset) / (channel, kind, hour, partition, offset).
        self.touched_buckets: dict[str, tuple[str, int, int, int]] = {}
        self.touched_live: dict[str, tuple[str, str, int, int, int]] = {}
        #: Channel → when a partial last carried only old events (the intake is working
        #: through a backlog): its live-queue rules hold until it settles.
        self.catching_up: dict[str, int] = {}
        self.last_evaluated: dict[str, int] = {}
        #: channel or queue series → whether a rule watches it (`_watched`)
        self.watched: dict[str, bool] = {}
        #: When the newest partial merged per owned channel was written (its record
        #: timestamp, wall-clock ms): how the wallboard tells live from stale.
        self.last_merged: dict[str, int] = {}
        #: series (channel, queue, agent) → its partials partition
        self.series_partition: dict[str, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        #: Held by a batch from its check of `generation` to its commit, and by the
        #: rebalance callbacks: partitions never move while a batch is in flight.
        self.lock = asyncio.Lock()
        self.checkpointer = Checkpointer(settings.app_id, False, True, {}, stage="merge")  # replaced per run

    # --- lifecycle ----------------------------------------------------------------

    async def _run_once(self) -> None:
        s = self.settings
        consumer = group_consumer(s, self.group, max_poll_records=MERGE_BATCH)
        restoring = restorer(s)
        checkpointer = self.checkpointer = Checkpointer(
            s.app_id,
            self.transactional,
            idempotent=s.capabilities.idempotence,
            client_options={"bootstrap_servers": s.bootstrap, **s.kafka_client_options()},
            stage="merge",
        )
        self._reset(None)
        try:
            await checkpointer.start(f"{s.app_id}-merge-warmup-{s.instance}")
            await restoring.start()
            await consumer.start()
            self.consumer = consumer
            consumer.subscribe([self.topic], listener=_Rebalance(self, restoring))
            while not self.stopping:
                # partials that arrive within the flush interval are applied together
                records, generation = await self.gather(
                    consumer,
                    MERGE_BATCH,
                    s.flush_interval_ms,
                    catch_up_ms=CATCH_UP_GATHER_FLUSHES * s.flush_interval_ms,
                    behind=from_backlog,
                )
                if not records:
                    continue
                async with self.lock:
                    if not self.is_current(generation):
                        # the partitions moved after the fetch: fetch from the committed offsets
                        await seek_to_committed(consumer, list(consumer.assignment()), self.committed_before)
                        continue
                    folded = self._fold(records)
                    if not folded.is_empty():
                        await checkpointer.commit(folded, consumer, self.group, self._committed)
                    self.backoff.reset()
        finally:
            self.consumer = None
            # a failed commit leaves the scoreboard ahead of the changelog, and the
            # partitions go to other workers: show nothing until they are restored here
            self._reset(None)
            await consumer.stop()
            await restoring.stop()
            await checkpointer.close()

    # --- one batch ------------------------------------------------------------------

    def _fold(self, records: dict[TopicPartition, list[Any]]) -> Folded:
        """Apply a batch of partials; returns what must be committed for it (the
        scoreboard and tables are ahead of the commit: if it fails, the stage
        restarts and restores them from the changelogs).

        A channel's partials in the batch (one per input partition and stage-1
        batch) are first summed, then applied to its windows and live queue once:
        each bucket is merged into every window it is in once per batch, not once
        per partial."""
        now = now_ms()
        folded = Folded(now)
        self.touched_buckets = {}
        self.touched_live = {}
        summed: dict[str, _Summed] = {}
        for tp, messages in records.items():
            part = folded.part(tp.partition)
            for message in messages:
                self._add(message, summed)
            part.offsets[tp] = messages[-1].offset + 1
        due: dict[str, int] = {}  # series whose rules step at the end of the batch → partition
        now = now_ms()
        for channel, batch in summed.items():
            self._apply(channel, batch)
            # New data is evaluated with its batch (an alert should not wait for the
            # next heartbeat); quiet channels once a second, so `for`/`clear_for` run.
            if (
                not is_agent(channel)  # agent figures: the JSON API only, no rules
                and self._watched(channel)
                and (
                    batch.moved
                    or now - self.last_evaluated.get(channel, 0) >= self.settings.snapshot_interval_ms
                )
            ):
                due[channel] = batch.partition
        self.scoreboard.advance(now)
        for partition in {tp.partition for tp in records}:
            self._delete_dropped(partition)
        for channel, partition in due.items():
            self._evaluate_alerts(channel, partition, now, folded.part(partition))
        self._write_touched(now)
        for table in (self.scores, self.alert_states):
            topic = table_changelog_topic(self.settings.app_id, table.name)
            for partition, changes in table.take_changes().items():
                folded.part(partition).tables[topic] = changes
        return folded

    def _add(self, message: Any, summed: dict[str, _Summed]) -> None:
        """Add what one partial holds that its channel's records have not applied yet
        (their `applied` offset is older) to the channel's sum for this batch."""
        partition, offset = message.partition, message.offset
        channel = message.key.decode()
        received = decode_partial(message.value)
        now = now_ms()
        if received.buckets and now - max(received.buckets) > CATCHING_UP_MS:
            self.catching_up[channel] = now
        batch = summed.get(channel)
        if batch is None:
            batch = summed[channel] = _Summed(partition)
        applied = self.applied
        for bucket, agg in received.buckets.items():
            if applied.get(f"{channel}|{bucket}", -1) < offset:
                batch.add_bucket(bucket, agg, offset)
        for kind, deltas in received.live.items():
            # hour chunk → whether its record has not seen this partial
            fresh = {
                chunk: applied.get(live_key(channel, kind, chunk), -1) < offset
                for chunk in {t - t % LIVE_CHUNK_MS for t in deltas}
            }
            if not all(fresh.values()):
                deltas = {t: n for t, n in deltas.items() if fresh[t - t % LIVE_CHUNK_MS]}
            if deltas:
                batch.add_live(kind, deltas, offset, [chunk for chunk, ok in fresh.items() if ok])
        self.series_partition[channel] = partition
        self.last_merged[channel] = max(
            self.last_merged.get(channel, 0), written_ms(message.timestamp or 0, now)
        )

    def _apply(self, channel: str, batch: _Summed) -> None:
        """Apply a channel's sum of the batch to its windows and live queue; note the
        table records it changed, each with the offset of the last partial that did."""
        partition = batch.partition
        touched, applied = self.touched_buckets, self.applied
        for bucket in self.scoreboard.apply(channel, batch.partial):
            key = f"{channel}|{bucket}"
            offset = batch.offsets[bucket]
            touched[key] = (channel, bucket, partition, offset)
            applied[key] = offset
        for (kind, chunk), offset in batch.chunks.items():
            key = live_key(channel, kind, chunk)
            self.touched_live[key] = (channel, kind, chunk, partition, offset)
            applied[key] = offset

    def _delete_dropped(self, partition: int) -> None:
        """Delete the table records of buckets retention dropped, for every series of
        this partials partition, quiet ones included: an agent who stopped working
        leaves no records behind."""
        for channel in [c for c in self.scoreboard.dropped if self.series_partition.get(c) == partition]:
            for bucket in self.scoreboard.take_dropped(channel):
                key = f"{channel}|{bucket}"
                self.scores.delete(key)
                self.applied.pop(key, None)
                self.touched_buckets.pop(key, None)
                self.emptied.pop(key, None)

    def _write_touched(self, now: int) -> None:
        """Write the scores records the batch changed, each once with its newest value
        and the offset of the last partial that changed it: bucket aggregates, and the
        live-queue chunks, one record per (channel, kind, hour of the times).

        A bucket or chunk that became empty keeps its record (with the offset that
        emptied it) for `EMPTY_KEPT_MS`: a partial replayed after a crash must still
        find the offset, or it would be applied twice. Later it is deleted here, with
        its offset (the windows no longer hold the bucket, so retention would never
        report it dropped).
        """
        for key, (channel, bucket, partition, offset) in self.touched_buckets.items():
            agg = self.scoreboard.channel(channel).buckets.get(bucket) or Aggregate()
            self.scores.put(key, {"p": partition, "o": offset, **agg.to_json()}, partition)
            if agg.is_empty():
                self.emptied[key] = now
            else:
                self.emptied.pop(key, None)
        live = self.scoreboard.live
        for key, (channel, kind, chunk, partition, offset) in self.touched_live.items():
            queue = live.get(channel)
            stored = (
                queue.chunk(kind, chunk, chunk + LIVE_CHUNK_MS)
                if queue is not None
                else {"b": chunk, "d": []}
            )
            self.scores.put(key, {"p": partition, "o": offset, **stored}, partition)
            if not chunk_is_empty(stored):
                self.emptied.pop(key, None)
            else:
                self.emptied[key] = now
        self.touched_buckets = {}
        self.touched_live = {}
        for key, since in list(self.emptied.items()):
            if now - since > EMPTY_KEPT_MS:
                del self.emptied[key]
                self.scores.delete(key)
                self.applied.pop(key, None)

    def _watched(self, series: str) -> bool:
        """Does any alert rule watch this channel or queue series (`Rule.applies_to`)?
        Queue series are watched by no default rule: their batches skip the alert step."""
        found = self.watched.get(series)
        if found is None:
            found = self.watched[series] = any(rule.applies_to(series) for rule in self.settings.alert_rules)
        return found

    def _evaluate_alerts(self, channel: str, partition: int, now: int, part: PartitionBatch) -> None:
        """Step every rule for one owned channel; its alert messages go out with the
        batch (in its transaction), its episodes to the `alert-state` table. The
        scoreboard has been advanced to `now`."""
        self.last_evaluated[channel] = now
        stored: dict[str, alerts.State] = self.alert_states.get(channel) or {}
        states = dict(stored)
        windows = self.scoreboard.views(channel)
        live = self.scoreboard.figures(channel)
        settled = now - self.catching_up.get(channel, -LIVE_SETTLE_MS) >= LIVE_SETTLE_MS
        messages = alerts.evaluate(self.settings.alert_rules, channel, windows, live, states, now, settled)
        if states != stored:
            self.alert_states.put(channel, states, partition)
        for message in messages:
            # cx.alerts is shared by every deployment on the broker: the header says whose
            part.messages.append(
                (
                    ALERTS_TOPIC,
                    f"{message['rule']}/{channel}/{message['window']}".encode(),
                    orjson.dumps(message),
                    [("x-app-id", self.settings.app_id.encode())],
                )
            )
        configured = {f"{r.name}/{r.window}" for r in self.settings.alert_rules}
        for rule_window, state in states.items():
            if rule_window not in configured:  # a rule since removed from the rules file
                continue
            rule, _, window = rule_window.partition("/")
            firing = state["s"] in ("firing", "clearing")
            self.instruments.alert_firing.set(rule, channel, window, firing)

    def _committed(self, part: PartitionBatch) -> None:
        """A partition's part of a batch is durable: count and log its alerts."""
        for topic, _, value, _ in part.messages:
            if topic != ALERTS_TOPIC:
                continue
            message = orjson.loads(value)
            self.instruments.alerts.labels(message["rule"], message["severity"], message["state"]).inc()
            log.warning("alert %s: %s", message["state"], message["summary"])

    # --- rebalances -----------------------------------------------------------------

    def _reset(self, partitions: set[int] | None) -> None:
        """Forget the tables of `partitions` (None: all) and every channel's windows:
        until the next assignment is restored, nothing is reported rather than stale
        figures."""
        for table in (self.scores, self.alert_states):
            if partitions is None:
                table.drop(set(table.partition_of.values()) | set(table.changes))
            else:
                table.drop(partitions)
        self.scoreboard = Scoreboard(
            self.timeline, now_ms(), self.settings.windows, self.settings.alert_rules
        )
        self.applied = {}
        self.emptied = {}
        self.instruments.alert_firing.clear()
        self.on_reset()

    async def restore(self, restorer: AIOKafkaConsumer, partitions: set[int]) -> None:
        """Read the tables of `partitions` back from their changelogs, from the start."""
        started = time.monotonic()
        tables = {
            table_changelog_topic(self.settings.app_id, t.name): t for t in (self.scores, self.alert_states)
        }
        for table in tables.values():
            table.drop(partitions)
        tps = [TopicPartition(topic, p) for topic in tables for p in sorted(partitions)]

        def replay(tp: TopicPartition, messages: list[Any]) -> None:
            tables[tp.topic].replay(tp.partition, [(m.key, m.value) for m in messages])

        total = await read_to_end(restorer, tps, replay)
        log.info(
            "merge tables restored: %d partitions, %d changelog records in %.1f s",
            len(partitions),
            total,
            time.monotonic() - started,
        )

    def rebuild(self, partitions: set[int]) -> None:
        """Rebuild the windows and live queues from the scores table for `partitions`."""
        now = now_ms()
        board = Scoreboard(self.timeline, now, self.settings.windows, self.settings.alert_rules)
        oldest = self.timeline.oldest_bucket(now)
        applied: dict[str, int] = {}
        self.emptied = {}
        for key, value in self.scores.items():
            if self.scores.partition_of.get(key) not in partitions:
                continue
            applied[key] = int(value.get("o", -1))
            channel, _, suffix = key.partition("|")
            self.series_partition[channel] = int(value["p"])
            if suffix.startswith(LIVE_PREFIX):
                kind = suffix.split("|")[1]
                times = chunk_times(value)
                if times:
                    board.live_queue(channel).apply(kind, times)
                else:
                    self.emptied[key] = now
                continue
            if not suffix.lstrip("-").isdigit():  # a record of an older layout (the backlog count)
                continue
            partial = ChannelPartial()
            bucket = int(suffix)
            partial.buckets[bucket] = agg = Aggregate.from_json(value)
            if bucket < oldest:  # past retention: no window holds it, deleted with the next batch
                self.emptied[key] = 0
            elif agg.is_empty():
                self.emptied[key] = now
            else:
                board.apply(channel, partial)
        self.scoreboard = board
        self.applied = applied
        self.on_reset()
        log.info("scoreboard rebuilt: channels=%s", board.owned())

    async def committed_before(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Upgrades: the partials offsets committed by the Faust agent that was the merge
        stage before 2026-12 (group `<app_id>`), for partitions the merge group has no
        offset of yet. Without them the new group would read every retained partial
        again, and a live-queue record swept since (no offset left to skip it) would
        take its deltas twice. {} where that group committed nothing (a new deployment)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.bootstrap, **self.settings.kafka_client_options()
        )
        try:
            await admin.start()
            offsets = await admin.list_consumer_group_offsets(self.settings.app_id, partitions=tps)
        except KafkaError as exc:
            log.warning(
                "merge: the old merge group's offsets were not read (%s): starting from the first partial",
                exc,
            )
            return {}
        finally:
            await admin.close()
        found = {tp: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}
        if found:
            log.info(
                "merge: going on from the offsets of the old merge group %s: %s", self.settings.app_id, found
            )
        return found


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs in aiokafka's coordinator task: waits for the batch in flight, and only
    then lets the partitions go; on assignment fences, restores and rebuilds before
    the first partial is applied."""

    def __init__(self, stage: MergeStage, restorer: AIOKafkaConsumer) -> None:
        self.stage = stage
        self.restorer = restorer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        stage = self.stage
        async with stage.lock:
            stage.generation += 1
            partitions = {tp.partition for tp in revoked}
            stage._reset(partitions)
            await stage.checkpointer.revoke(partitions)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Fence the partitions' previous owners first (their open transactions are
        aborted), then restore the tables, rebuild the windows and read the committed
        offsets."""
        stage = self.stage
        async with stage.lock:
            stage.generation += 1
            try:
                partitions = {tp.partition for tp in assigned}
                await stage.checkpointer.assign(partitions)
                await stage.restore(self.restorer, partitions)
                stage.rebuild(partitions)
                consumer = stage.consumer
                if consumer is None:
                    return
                await seek_to_committed(consumer, list(assigned), stage.committed_before)
            except Exception as exc:  # aiokafka would log it and go on with this assignment
                stage.assignment_failed(exc)
                return
            stage.assignment_restored()
