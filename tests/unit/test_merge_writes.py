"""The merge stage's table writes: the store changes at once, and the changelog
records are what Faust's own codecs would write (the table reads them back)."""

import asyncio
from typing import Any

import faust
import orjson

from stream_app.merge_tables import MEMORY, replayed_table
from stream_app.merge_writes import SEND_INTERVAL_MS, TableWrites


class Producer:
    """Records what it is handed, as Faust's producer `send` would take it."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, *record: Any) -> Any:
        self.sent.append(record)
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)  # acknowledged at once
        return delivered


def test_records_are_encoded_as_the_table_reads_them_back() -> None:
    app = faust.App("cx-unit-writes", broker="kafka://localhost:1", store=MEMORY)
    table = replayed_table(app, "scores", 4)
    writes = TableWrites(table)
    value = {"p": 2, "o": 17, "c": {"tickets": 3}, "s": {"frt": {"12": 1}}, "t": {"1800000000000": 2}}
    writes.put("chat|1800000000000", value, 2)
    assert table.data["chat|1800000000000"] is value
    writes.put("chat|1800000060000", {"p": 2, "o": 17}, 2)
    writes.delete("chat|1800000060000", 2)
    writes.delete("absent", 2)  # nothing in the table: no tombstone
    producer = Producer()
    assert asyncio.run(writes.send(producer)) == 2
    (topic, key, body, partition, _, _), (_, gone, tombstone, _, _, _) = producer.sent
    assert topic == table.changelog_topic.get_topic_name() and partition == 2
    assert key == app.serializers.dumps_key(table.key_type, "chat|1800000000000", serializer="json")
    assert app.serializers.loads_value(table.value_type, body, serializer="json") == value
    assert gone == app.serializers.dumps_key(table.key_type, "chat|1800000060000", serializer="json")
    assert tombstone is None
    assert "chat|1800000060000" not in table.data and len(writes.in_flight) == 2


def test_a_record_changed_by_many_partials_is_sent_once_with_its_newest_value() -> None:
    app = faust.App("cx-unit-writes-coalesced", broker="kafka://localhost:1", store=MEMORY)
    table = replayed_table(app, "scores", 4)
    writes = TableWrites(table)
    for offset in range(5):
        writes.put("phone|1800000000000", {"p": 1, "o": offset, "c": {"chats": offset + 1}}, 1)
        writes.put(f"phone|live|queued|{offset}", {"p": 1, "o": offset, "t": {}}, 1)
    producer = Producer()
    assert asyncio.run(writes.send(producer)) == 6
    sent = {orjson.loads(key): orjson.loads(body) for _, key, body, _, _, _ in producer.sent}
    assert sent["phone|1800000000000"] == {"p": 1, "o": 4, "c": {"chats": 5}}
    assert asyncio.run(writes.send(producer)) == 0  # nothing changed since


def test_records_are_sent_when_due_and_all_of_them_before_a_commit() -> None:
    app = faust.App("cx-unit-writes-due", broker="kafka://localhost:1", store=MEMORY)
    table = replayed_table(app, "scores", 4)
    writes = TableWrites(table)
    producer = Producer()

    async def run() -> None:
        assert not writes.due(10_000)  # nothing pending
        writes.put("sms|1800000000000", {"p": 0, "o": 1}, 0)
        assert writes.due(SEND_INTERVAL_MS)  # never sent before
        await writes.send(producer, 10_000)
        writes.put("sms|1800000000000", {"p": 0, "o": 2}, 0)
        assert not writes.due(10_000 + SEND_INTERVAL_MS - 1)
        assert writes.due(10_000 + SEND_INTERVAL_MS)
        await writes.durable(producer)  # a commit: what is pending goes first
        assert len(producer.sent) == 2 and writes.pending == {} and writes.in_flight == []
        writes.put("sms|1800000000000", {"p": 0, "o": 3}, 0)
        writes.drop()  # partitions revoked: the next owner applies those partials again
        assert await writes.send(producer) == 0

    asyncio.run(run())
