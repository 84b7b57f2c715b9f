"""The merge stage's Faust consumer: what it reads, and which offsets it may commit.

Three rules, each a small override of Faust's aiokafka consumer:

* **Read committed.** The partials topic is written in the intake stage's Kafka
  transactions; records of aborted ones must be skipped. Faust chooses
  read_committed only in its own exactly_once mode, which makes every Faust
  producer transactional (and has open duplicate bugs upstream).
* **Records before offsets.** The merge stage's changelog records must be durable
  before the partials offsets that produced them are committed
  (`stream_app/merge_writes.py`): every commit first drains Faust's producer
  buffer and awaits `ReadCommittedApp.before_commit`.
* **No commit for a partial nobody applied.** At a rebalance Faust stops the flow
  and its streams *skip* the messages they still get (flow stopped, or fetched in
  an earlier generation), but they acknowledge them, so Faust would commit their
  offsets: the partition's next owner (this worker again, or another) would start
  after partials that were never applied. CI saw that as a lost partial after a
  worker was killed and restarted (issue 16's merge-stage work: a phone channel's
  live queue kept a chat answered in the lost partial). After Faust clears the
  committed offset of a revoked partition, such an acknowledgement was even taken
  beyond a gap (`_new_offset`'s head-gap check needs a committed offset). Here a
  message acknowledged while the flow is stopped, or from an earlier consumer
  generation, is marked done (so Faust's `wait_empty` ends) but its offset is not
  recorded as committable. A partial the agent did finish in that moment is then
  read again by the next owner; the records' offsets (`"o"`) make that replay exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock
from mode.utils.futures import notify


def commits_offset(flow_active: bool, message_generation: int | None, generation: int | None) -> bool:
    """Whether an acknowledged message's offset may be committed: only while the
    flow runs and for a message fetched in the consumer's current generation (a
    message Faust skipped at a rebalance is acknowledged too, but nobody applied it)."""
    return flow_active and message_generation == generation


class _ReadCommittedThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = "read_committed"  # read by AIOKafkaConsumer.start()
        return consumer


class MergeConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the three rules of this module."""

    def _new_consumer_thread(self) -> Any:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)

    def ack(self, message: Any) -> bool:
        app = self.app
        if commits_offset(app.flow_control.is_active(), message.generation_id, app.consumer_generation_id):
            result: bool = super().ack(message)
            return result
        with ack_lock:  # as Faust's ack: done, so nothing waits for it; no offset recorded
            if not message.acked:
                message.acked = True
                self._unacked_messages.discard(message)
                notify(self._waiting_for_ack)
        return False

    async def _commit_offsets(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        buffer = self.app.producer.buffer
        while buffer.size:  # Faust's own flush gives up when a send takes over 0.1 s
            await buffer.flush()
        before = cast("ReadCommittedApp", self.app).before_commit
        if before is not None:
            await before()
        result: bool = await super()._commit_offsets(offsets, start_new_transaction)
        return result


class _MergeTransport(faust_aiokafka.Transport):
    Consumer = MergeConsumer


class ReadCommittedApp(faust.App):
    """A Faust app whose consumer follows this module's rules (`MergeConsumer`)."""

    #: Awaited before every offset commit (the merge stage's records made durable).
    before_commit: Callable[[], Awaitable[None]] | None = None

    def _new_transport(self) -> Any:
        return _MergeTransport(self.conf.broker_consumer, self)
