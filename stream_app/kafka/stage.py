"""What both stages (intake, merge) share: their aiokafka clients, the restart after
a broker failure, and the rule that nothing is processed for an assignment that
was not restored completely."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stream_app.config import Settings
from stream_app.kafka.backoff import Backoff

log = logging.getLogger("stream_app.stage")


def group_consumer(settings: Settings, group: str, **options: Any) -> AIOKafkaConsumer:
    """A stage's group member: offsets committed by the stage (with its records),
    read_committed, from the earliest offset where the group has none."""
    broker = settings.capabilities
    return AIOKafkaConsumer(
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=broker.session_timeout_ms,
        heartbeat_interval_ms=broker.heartbeat_interval_ms,
        bootstrap_servers=settings.bootstrap,
        **settings.kafka_client_options(),
        **options,
    )


def restorer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer without a group that reads changelogs back (read_committed)."""
    return AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        bootstrap_servers=settings.bootstrap,
        **settings.kafka_client_options(),
    )


class RestartingStage:
    """Runs `_run_once` until the worker stops; after a broker failure (KafkaError)
    it starts again from the committed offsets, backing off 1 s doubling to 30 s
    (back to 1 s once a batch commits: `backoff.reset()`)."""

    name = "stage"

    def __init__(self) -> None:
        self.stopping = False
        self.backoff = Backoff(1.0, 30.0)
        #: What the stage waits for before it runs (None: running); shown by /healthz.
        self.waiting_for: str | None = "its first partitions"
        #: Bumped by every rebalance callback (an assignment's twice: as it starts and
        #: once it is restored); a batch fetched in an older one is dropped.
        self.generation = 0
        #: The generation whose assignment was fenced and restored completely; nothing
        #: is processed while another one is current.
        self.restored = -1
        #: Why the last assignment could not be restored (aiokafka logs and swallows
        #: what a rebalance callback raises): the stage restarts from the committed offsets.
        self.assign_failed: BaseException | None = None

    async def _run_once(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        while not self.stopping:
            self.assign_failed = None
            self.restored = -1  # until this run's first assignment is restored
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                delay = self.backoff.next()
                self.waiting_for = f"the broker ({type(exc).__name__}: {exc}); next attempt in {delay:g} s"
                log.warning("%s: waiting for %s", self.name, self.waiting_for)
                await asyncio.sleep(delay)

    def is_current(self, fetched_in: int) -> bool:
        """Whether a batch fetched in generation `fetched_in` may be processed: the
        partitions have not moved since, and their assignment was restored. Raises
        KafkaError (the stage restarts) where the assignment's restore failed."""
        if self.assign_failed is not None:
            raise KafkaError(f"{self.name}: an assignment was not restored ({self.assign_failed!r})")
        return fetched_in == self.generation and self.restored == self.generation

    async def gather(
        self,
        consumer: AIOKafkaConsumer,
        limit: int,
        wait_ms: int,
        catch_up_ms: int = 0,
        behind: Callable[[Any], bool] | None = None,
    ) -> tuple[dict[TopicPartition, list[Any]], int]:
        """Up to `limit` records, waiting at most `wait_ms` after the first for more: a
        batch's costs (a transaction per partition, and per series a partial or a
        table record, a window update and an alert step) are the same for a few
        records as for thousands, so a trickle is batched too (bounded latency).
        While every record fetched so far is `behind` (it comes from a producer
        working through a backlog), waits up to `catch_up_ms` after the first instead:
        fewer, larger batches exactly when the figures are catching up anyway; the
        first record that is not behind brings the deadline back to `wait_ms`.
        Returns the records with the rebalance generation they were fetched in."""
        generation = self.generation
        records: dict[TopicPartition, list[Any]] = await consumer.getmany(
            timeout_ms=wait_ms, max_records=limit
        )
        count = sum(len(batch) for batch in records.values())
        first = time.monotonic()
        all_behind = behind is not None and catch_up_ms > wait_ms and _all(behind, records.values())
        while count and count < limit and generation == self.generation and not self.stopping:
            left = first + (catch_up_ms if all_behind else wait_ms) / 1000 - time.monotonic()
            if left <= 0:
                break
            more = await consumer.getmany(timeout_ms=int(left * 1000) + 1, max_records=limit - count)
            for tp, batch in more.items():
                records.setdefault(tp, []).extend(batch)
                count += len(batch)
            if all_behind and behind is not None:
                all_behind = _all(behind, more.values())
        return records, generation

    def assignment_failed(self, exc: Exception) -> None:
        log.warning("%s: assignment not restored: %s: %s", self.name, type(exc).__name__, exc)
        self.assign_failed = exc

    def assignment_restored(self) -> None:
        """The assignment is fenced, restored and at its committed offsets: a new
        generation starts here, and only batches gathered in it are processed.

        aiokafka fetches a newly assigned partition from its committed offset while
        the callback is still restoring; the callback's seek to the committed offsets
        then brings the same records again. A gather begun during the callback (in
        the generation the callback started) would hold both, and fold them twice:
        the merge stage applied 103 partials twice in one batch of a rebalance test
        (double-counted 179,618). Such a gather now ends stale and is fetched again."""
        self.generation += 1
        self.restored = self.generation
        self.waiting_for = None


def _all(behind: Callable[[Any], bool], batches: Iterable[list[Any]]) -> bool:
    return all(behind(record) for batch in batches for record in batch)
