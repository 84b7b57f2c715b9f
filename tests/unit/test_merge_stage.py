"""The merge stage's rebalance rule: partials are applied only to state restored for
the current assignment. aiokafka logs and swallows what a rebalance callback raises,
so an assignment whose restore failed must stop the stage (it restarts from the
committed offsets) instead of applying partials to the emptied tables."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_app.config import Settings
from stream_app.merge_stage import MergeStage, _Rebalance
from stream_app.metrics import Instruments


def _stage() -> MergeStage:
    return MergeStage(Settings(), Instruments(lambda: []), lambda: None)


def test_a_failed_restore_is_kept_and_the_assignment_is_not_marked_restored() -> None:
    async def run() -> MergeStage:
        stage = _stage()
        # a consumer that was never started cannot seek: the restore fails as it does
        # when the broker times out during the rebalance
        restorer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")
        await _Rebalance(stage, restorer).on_partitions_assigned([TopicPartition(stage.topic, 0)])
        return stage

    stage = asyncio.run(run())
    assert stage.assign_failed is not None
    assert stage.restored != stage.generation
    assert stage.waiting_for is not None


def test_a_revocation_forgets_the_tables_and_windows_of_its_partitions() -> None:
    async def run() -> MergeStage:
        stage = _stage()
        stage.scores.put("chat|1", {"p": 0, "o": 5, "n": 1}, 0)
        stage.scores.put("mail|1", {"p": 1, "o": 6, "n": 1}, 1)
        stage.applied = {"chat|1": 5, "mail|1": 6}
        stage.restored = stage.generation
        await _Rebalance(stage, AIOKafkaConsumer()).on_partitions_revoked([TopicPartition(stage.topic, 0)])
        return stage

    stage = asyncio.run(run())
    assert stage.scores.data == {"mail|1": {"p": 1, "o": 6, "n": 1}}
    assert stage.applied == {}, "nothing is skipped as applied until the next restore"
    assert stage.restored != stage.generation, "no partial is applied before the next assignment"
    assert stage.scoreboard.owned() == []
