"""The merge stage's rebalance rule: partials are applied only to state restored for
the current assignment. aiokafka logs and swallows what a rebalance callback raises,
so an assignment whose restore failed must stop the stage (it restarts from the
committed offsets) instead of applying partials to the emptied tables."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_app import merge_stage
from stream_app.config import Settings, load
from stream_app.core import alerts
from stream_app.merge_stage import MergeStage, _Rebalance, now_ms
from stream_app.metrics import Instruments


def _stage(settings: Settings | None = None) -> MergeStage:
    return MergeStage(settings or Settings(), Instruments(lambda: []), lambda: None)


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


def _partial(channel: str, offset: int, live: dict[str, dict[str, int]]) -> SimpleNamespace:
    """A partials record as the consumer hands it over (key, value, partition, offset, timestamp)."""
    value = orjson.dumps({"b": {}, "l": live})
    return SimpleNamespace(key=channel.encode(), value=value, partition=2, offset=offset, timestamp=0)


def test_a_batch_writes_each_changed_record_once_with_its_newest_value_and_offset() -> None:
    stage = _stage()
    stage.restored = stage.generation
    hour = 1_800_000_000_000 - 1_800_000_000_000 % 3_600_000
    opened = {"open": {str(hour + 60_000): 1, str(hour + 120_000): 1}}
    closed = {"open": {str(hour + 60_000): -1}}
    tp = TopicPartition(stage.topic, 2)
    folded = stage._fold({tp: [_partial("chat", 10, opened), _partial("chat", 11, closed)]})
    records = folded.part(2).tables[f"{stage.settings.app_id}-scores-changelog"]
    assert len(records) == 1, records
    key, value = records[0]
    assert orjson.loads(key) == f"chat|live|open|{hour}"
    assert value is not None
    assert orjson.loads(value) == {"p": 2, "o": 11, "b": hour, "d": [120_000]}
    assert folded.part(2).offsets == {tp: 12}
    # read again after a crash: nothing is applied twice
    again = stage._fold({tp: [_partial("chat", 10, opened), _partial("chat", 11, closed)]})
    assert again.part(2).tables.get(f"{stage.settings.app_id}-scores-changelog") is None
    assert stage.scoreboard.figures("chat").open_tickets == 1


def _bucket_partial(channel: str, offset: int, bucket: int, tickets: int) -> SimpleNamespace:
    value = orjson.dumps({"b": {str(bucket): {"c": {"tickets": tickets}, "s": {}}}, "l": {}})
    return SimpleNamespace(key=channel.encode(), value=value, partition=2, offset=offset, timestamp=0)


def test_a_channel_s_partials_are_summed_once_each_and_a_replay_adds_only_the_unapplied() -> None:
    stage = _stage()
    stage.restored = stage.generation
    bucket = stage.timeline.bucket_of(now_ms())
    tp = TopicPartition(stage.topic, 2)
    first = _bucket_partial("chat", 10, bucket, 1)
    folded = stage._fold({tp: [first]})
    # the next batch holds the first partial again (its commit was lost) and two new ones
    folded = stage._fold(
        {tp: [first, _bucket_partial("chat", 11, bucket, 2), _bucket_partial("chat", 12, bucket, 4)]}
    )
    assert stage.scoreboard.channel("chat").window("24h").get("tickets") == 1 + 2 + 4
    records = dict(folded.part(2).tables[f"{stage.settings.app_id}-scores-changelog"])
    value = records[orjson.dumps(f"chat|{bucket}").decode()]
    assert value is not None
    assert orjson.loads(value) == {"p": 2, "o": 12, "c": {"tickets": 7}, "s": {}}


def _count_alert_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The series the alert rules are stepped for, in order, from now on."""
    stepped: list[str] = []
    real = alerts.evaluate

    def counting(rules: Any, channel: str, *args: Any) -> Any:
        stepped.append(channel)
        return real(rules, channel, *args)

    monkeypatch.setattr(alerts, "evaluate", counting)
    return stepped


def test_alert_rules_step_once_per_channel_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _stage(load({"STREAM_APP_STORE": "memory://"}))  # the default rules
    stage.restored = stage.generation
    bucket = stage.timeline.bucket_of(now_ms())
    stepped = _count_alert_steps(monkeypatch)
    tp = TopicPartition(stage.topic, 2)
    stage._fold(
        {tp: [_bucket_partial(c, n, bucket, 1) for n, c in enumerate(["chat", "email", "chat", "chat"])]}
    )
    assert sorted(stepped) == ["chat", "email"]


def test_a_bucket_emptied_by_a_retraction_leaves_no_record_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _stage()
    stage.restored = stage.generation
    start = now_ms()
    bucket = stage.timeline.bucket_of(start)
    tp = TopicPartition(stage.topic, 2)
    changelog = f"{stage.settings.app_id}-scores-changelog"
    key = orjson.dumps(f"chat|{bucket}").decode()
    stage._fold({tp: [_bucket_partial("chat", 10, bucket, 1)]})
    emptied = dict(stage._fold({tp: [_bucket_partial("chat", 11, bucket, -1)]}).part(2).tables[changelog])
    assert orjson.loads(emptied[key] or b"null") == {"p": 2, "o": 11, "c": {}, "s": {}}, (
        "kept: a replay finds it"
    )
    # over an hour after it was emptied (a minute of slack: the folds above take time),
    # the next batch (any channel of the partition) deletes it and its offset
    monkeypatch.setattr(merge_stage, "now_ms", lambda: start + merge_stage.EMPTY_KEPT_MS + 60_000)
    later = dict(stage._fold({tp: [_bucket_partial("mail", 12, bucket, 1)]}).part(2).tables[changelog])
    assert later[key] is None
    assert f"chat|{bucket}" not in stage.applied and f"chat|{bucket}" not in stage.scores.data


def test_a_restore_drops_the_records_of_buckets_past_retention() -> None:
    stage = _stage()
    old = stage.timeline.oldest_bucket(now_ms()) - stage.timeline.bucket_ms
    stage.scores.put(f"chat|{old}", {"p": 2, "o": 5, "c": {"tickets": 1}, "s": {}}, 2)
    stage.scores.take_changes()
    stage.rebuild({2})
    stage.restored = stage.generation
    tp = TopicPartition(stage.topic, 2)
    folded = stage._fold({tp: [_bucket_partial("mail", 6, stage.timeline.bucket_of(now_ms()), 1)]})
    records = dict(folded.part(2).tables[f"{stage.settings.app_id}-scores-changelog"])
    assert records[orjson.dumps(f"chat|{old}").decode()] is None


def test_a_restore_reads_live_queue_chunks_in_either_stored_form() -> None:
    """Chunks written before 2026-12 hold `{"<time>": count}`; until 2026-12-06 a list
    of times and the counts that are not 1; now gaps between the times (`LiveQueue.chunk`)."""
    stage = _stage()
    hour = now_ms() - now_ms() % merge_stage.LIVE_CHUNK_MS
    stage.scores.put(f"chat|live|open|{hour}", {"p": 2, "o": 5, "t": {str(hour + 1): 2}}, 2)
    stage.scores.put(f"chat|live|open|{hour - 3_600_000}", {"p": 2, "o": 6, "t": [hour - 5, hour - 4]}, 2)
    stage.scores.put(
        f"mail|live|open|{hour}", {"p": 2, "o": 7, "t": [hour + 9, hour + 10], "m": {str(hour + 10): 3}}, 2
    )
    stage.scores.take_changes()
    stage.rebuild({2})
    assert stage.scoreboard.figures("chat").open_tickets == 4
    assert stage.scoreboard.figures("mail").open_tickets == 4
    stage.restored = stage.generation
    tp = TopicPartition(stage.topic, 2)
    folded = stage._fold({tp: [_partial("chat", 8, {"open": {str(hour + 2): 1}})]})
    records = dict(folded.part(2).tables[f"{stage.settings.app_id}-scores-changelog"])
    assert orjson.loads(records[orjson.dumps(f"chat|live|open|{hour}").decode()] or b"null") == {
        "p": 2,
        "o": 8,
        "b": hour,
        "d": [1, 1],
        "m": {str(hour + 1): 2},
    }


def test_series_no_rule_watches_skip_the_alert_step(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _stage(load({"STREAM_APP_STORE": "memory://"}))  # default rules: channels and `all`, no queue
    stage.restored = stage.generation
    bucket = stage.timeline.bucket_of(now_ms())
    stepped = _count_alert_steps(monkeypatch)
    tp = TopicPartition(stage.topic, 2)
    stage._fold(
        {tp: [_bucket_partial(c, n, bucket, 1) for n, c in enumerate(["chat", "queue:billing", "all"])]}
    )
    assert stepped == ["chat"]  # `all` and queues: no default rule watches them
    assert stage.scoreboard.channel("queue:billing").window("24h").get("tickets") == 1, "still counted"
