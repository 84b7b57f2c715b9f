"""The merge stage's table writes: the store changes at once, and the changelog
records are what Faust's own codecs would write (the table reads them back)."""

import asyncio
from typing import Any

import faust

from stream_app.merge_tables import MEMORY, replayed_table
from stream_app.merge_writes import TableWrites


class Producer:
    """Records what it is handed, as Faust's producer `send` would take it."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, *record: Any) -> Any:
        self.sent.append(record)
        return None


def test_records_are_encoded_as_the_table_reads_them_back() -> None:
    app = faust.App("cx-unit-writes", broker="kafka://localhost:1", store=MEMORY)
    table = replayed_table(app, "scores", 4)
    writes = TableWrites(table)
    value = {"p": 2, "o": 17, "c": {"tickets": 3}, "s": {"frt": {"12": 1}}, "t": {"1800000000000": 2}}
    writes.put("chat|1800000000000", value, 2)
    assert table.data["chat|1800000000000"] is value
    writes.delete("chat|1800000000000", 2)
    writes.delete("absent", 2)  # nothing in the table: no tombstone
    producer = Producer()
    assert asyncio.run(writes.send(producer)) == 2
    (topic, key, body, partition, _, _), tombstone = producer.sent
    assert topic == table.changelog_topic.get_topic_name() and partition == 2
    assert key == app.serializers.dumps_key(table.key_type, "chat|1800000000000", serializer="json")
    assert app.serializers.loads_value(table.value_type, body, serializer="json") == value
    assert tombstone[1] == key and tombstone[2] is None
    assert "chat|1800000000000" not in table.data and writes.in_flight == [None, None]
