"""The merge stage's tables: `scores` (a channel's event-time buckets and live-queue
chunks) and `alert-state` (its alert episodes), held in memory per partials
partition and rebuilt from their changelogs, `<app_id>-<table>-changelog`, on every
assignment (stream_app/merge_stage.py).

Each record carries `"o"`, the offset of the last partial (of its channel's
partials partition) applied to it: a partial read again after a crash is applied
only to records with an older `"o"`. On replay a record never replaces a newer
version of itself (a higher `"o"`): on a broker without transactions a worker
frozen past its session can still write a late, older version after the new
owner's; with transactions its writes are aborted (fenced) and never read.

No Kafka here: the stage reads the changelogs and commits `take_changes()` with
the partials offsets they go with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from stream_app.core.aggregate import encode_json


def version(value: Any) -> int:
    """The offset of the last partial applied to a table record (-1: none)."""
    if isinstance(value, dict):
        found = value.get("o")
        if isinstance(found, int):
            return found
    return -1


def encode_key(key: str) -> str:
    """A record's changelog key: the key as a JSON string (the layout Faust's tables wrote)."""
    return orjson.dumps(key).decode()


class Table:
    """One table: key → JSON value, each record on one partials partition, and the
    changes since the last `take_changes` per partition (None: deleted)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data: dict[str, Any] = {}
        self.partition_of: dict[str, int] = {}
        self.changes: dict[int, dict[str, Any]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(list(self.data.items()))

    def put(self, key: str, value: Any, partition: int) -> None:
        self.data[key] = value
        self.partition_of[key] = partition
        self.changes.setdefault(partition, {})[key] = value

    def delete(self, key: str) -> None:
        partition = self.partition_of.pop(key, None)
        if self.data.pop(key, None) is not None and partition is not None:
            self.changes.setdefault(partition, {})[key] = None

    def replay(self, partition: int, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Apply changelog records (raw key, raw value; None value: deleted) of one
        partition in order; a record never replaces a newer version of itself."""
        data, partitions = self.data, self.partition_of
        for raw_key, raw_value in records:
            if raw_key is None:
                continue
            key = orjson.loads(raw_key)
            if not isinstance(key, str):
                continue
            if raw_value is None:
                data.pop(key, None)
                partitions.pop(key, None)
                continue
            value = orjson.loads(raw_value)
            if key in data and version(data[key]) > version(value):
                continue  # an older version written late (by a frozen worker that woke up)
            data[key] = value
            partitions[key] = partition

    def drop(self, partitions: set[int]) -> None:
        """Forget the records (and uncommitted changes) of `partitions`."""
        for key in [k for k, p in self.partition_of.items() if p in partitions]:
            del self.partition_of[key]
            self.data.pop(key, None)
        for partition in partitions:
            self.changes.pop(partition, None)

    def take_changes(self) -> dict[int, list[tuple[str, bytes | None]]]:
        """partition → changelog records (encoded key, JSON value or None) since the
        last call, one per key (its newest value)."""
        taken = {
            partition: [
                (encode_key(key), None if value is None else encode_json(value))
                for key, value in changed.items()
            ]
            for partition, changed in self.changes.items()
            if changed
        }
        self.changes = {}
        return taken
