"""The merge stage's tables: a changelog replay never lets an older version of a
record (a frozen worker's late write) replace a newer one; changes are taken per
partition, newest value per key; `drop` forgets a partition's records."""

from __future__ import annotations

from typing import Any

import orjson

from stream_app.merge_tables import Table, encode_key, version


def _raw(key: str, value: dict[str, Any] | None) -> tuple[bytes, bytes | None]:
    return orjson.dumps(key), None if value is None else orjson.dumps(value)


def test_a_late_older_version_does_not_replace_a_newer_one() -> None:
    table = Table("scores")
    table.replay(
        0,
        [
            _raw("chat|1", {"o": 10, "end_n": 3, "contn": 1}),
            _raw("chat|1", {"o": 12, "end_n": 4, "contn": 1}),  # the new owner's
            _raw("chat|1", {"o": 11, "end_n": 3, "contn": 2}),  # the frozen worker's, late
            _raw("chat|2", {"o": 11, "end_n": 1}),
        ],
    )
    assert table.data["chat|1"] == {"o": 12, "end_n": 4, "contn": 1}
    assert table.data["chat|2"] == {"o": 11, "end_n": 1}
    assert table.take_changes() == {}, "a replay is not a change"


def test_the_same_version_again_and_tombstones_apply_in_order() -> None:
    table = Table("scores")
    table.replay(0, [_raw("chat|1", {"o": 12, "n": 1}), _raw("chat|3", {"o": 5})])
    table.replay(2, [_raw("chat|1", {"o": 12, "n": 1}), _raw("chat|3", None)])
    assert table.data["chat|1"] == {"o": 12, "n": 1}
    assert table.partition_of["chat|1"] == 2
    assert "chat|3" not in table.data


def test_changes_are_taken_per_partition_with_the_newest_value_once() -> None:
    table = Table("scores")
    table.put("chat|1", {"o": 1}, 0)
    table.put("chat|1", {"o": 2}, 0)
    table.put("mail|1", {"o": 7}, 3)
    table.put("mail|2", {"o": 8}, 3)
    table.delete("mail|2")
    table.delete("never|written")
    assert table.take_changes() == {
        0: [(encode_key("chat|1"), orjson.dumps({"o": 2}))],
        3: [(encode_key("mail|1"), orjson.dumps({"o": 7})), (encode_key("mail|2"), None)],
    }
    assert table.take_changes() == {}
    assert encode_key("chat|1") == '"chat|1"', "the layout Faust's tables wrote: a JSON string"


def test_drop_forgets_a_partition_and_its_pending_changes() -> None:
    table = Table("scores")
    table.replay(1, [_raw("chat|1", {"o": 1})])
    table.put("chat|2", {"o": 2}, 1)
    table.put("mail|1", {"o": 3}, 2)
    table.drop({1})
    assert table.data == {"mail|1": {"o": 3}}
    assert table.take_changes() == {2: [(encode_key("mail|1"), orjson.dumps({"o": 3}))]}


def test_version_is_the_offset_of_the_last_partial_or_minus_one() -> None:
    assert version({"o": 7}) == 7
    assert version({"t": {}}) == -1
    assert version(None) == -1
    assert version([1]) == -1
