"""Partials that arrive while an assignment is being restored are applied once.

aiokafka starts fetching a newly assigned partition from its committed offset while
the merge stage's assignment callback is still restoring the tables; the callback
then seeks to the committed offsets, and the same partials are fetched again. A
batch gathered across that seek held both copies and applied them twice (seen as a
rare double count in the rebalance test: 5,764 survey counts in CI, 179,618 in one
local run, where 103 partials were applied twice in one batch). Here the restore
outlasts a gather, so the next gather begins while the callback runs, and the
partials are written just before the restore ends: that gather holds them when the
callback seeks back to the committed offsets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_app.config import load
from stream_app.core.aggregate import Aggregate
from stream_app.core.partial_codec import encode_partial
from stream_app.core.scoreboard import ChannelPartial
from stream_app.internal_topics import partials_topic
from stream_app.kafka.probe import prepare_broker
from stream_app.merge_stage import MergeStage
from stream_app.metrics import Instruments
from tests.integration.harness import RUN, run_sync

pytestmark = [pytest.mark.integration]

PARTIALS = 40
CHANNEL = "chat"
#: A gather waits this long for partials (and this long after its first one).
GATHER_S = 4


def _survey_partial(at_ms: int) -> bytes:
    partial = ChannelPartial()
    agg = partial.buckets[at_ms - at_ms % 60_000] = Aggregate()
    agg.counts.update({"surveys": 1, "csat_n": 1, "csat_ok": 1})
    return encode_partial(partial)


class _PartialsDuringRestore(MergeStage):
    """The real merge stage; the partials reach the broker as its first restore ends."""

    written = False

    async def restore(self, restorer: AIOKafkaConsumer, partitions: set[int]) -> None:
        await super().restore(restorer, partitions)
        if not self.written:
            self.written = True
            await asyncio.sleep(GATHER_S + 0.5)  # the gather begun before the assignment ends empty
            producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap)
            await producer.start()
            try:
                now = int(time.time() * 1000)
                for n in range(PARTIALS):
                    await producer.send(self.topic, key=CHANNEL.encode(), value=_survey_partial(now - n))
                await producer.flush()
            finally:
                await producer.stop()
            await asyncio.sleep(0.3)  # the consumer fetches them before the callback seeks


def _surveys(stage: MergeStage) -> tuple[int, int]:
    """Survey counts in the channel's buckets and in its widest window."""
    windows = stage.scoreboard.channels.get(CHANNEL)
    if windows is None:
        return 0, 0
    buckets = sum(agg.counts.get("surveys", 0) for agg in windows.buckets.values())
    widest = max(windows.specs, key=lambda spec: spec.length_ms).name
    return buckets, windows.windows[widest].counts.get("surveys", 0)


def test_partials_fetched_while_the_assignment_is_restored_are_applied_once(bootstrap: str) -> None:
    env = {
        "STREAM_APP_BROKER": bootstrap,
        "STREAM_APP_APP_ID": f"cx-assign-{RUN}",
        "STREAM_APP_FLUSH_INTERVAL": f"{GATHER_S}s",
    }

    async def scenario() -> list[tuple[int, int]]:
        settings = await prepare_broker(load(env))
        assert partials_topic(settings.app_id)
        stage = _PartialsDuringRestore(settings, Instruments(lambda: []), lambda: None)
        task = asyncio.create_task(stage.run())
        seen: list[tuple[int, int]] = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                seen.append(_surveys(stage))
                if seen[-1][0] >= PARTIALS:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(GATHER_S + 1)  # a second copy would be applied by now
            seen.append(_surveys(stage))
        finally:
            stage.stopping = True
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return seen

    seen: Any = run_sync(scenario())
    assert seen[-1] == (PARTIALS, PARTIALS), f"surveys (buckets, widest window) over time: {seen[-8:]}"
