"""The merge stage's Faust tables: held in memory and rebuilt from their changelogs
on every assignment, the newest version of a record winning.

The merge stage runs at least once: each table record carries `"o"`, the offset of
the last partial (of its channel's partials partition) applied to it, and a
replayed partial is applied only to records with an older `"o"`. That makes a
replay exact only if the table holds what the changelog holds. Two things broke
that (CI, issue 13: the stall test on Apache Kafka, the rebalance test on the
embedded broker):

* **Local state the changelog never got.** Faust's memory store keeps every key
  written live across a rebalance and only overwrites the keys it reads back; a
  worker frozen past its session (GC pause, VM freeze) kept records whose
  changelog writes never landed, and RocksDB kept them across a SIGKILL and a
  restart. Their `"o"` then skipped partials no committed record held. So the
  tables here are always in memory (they are small: one record per channel and
  bucket), and every rebalance forgets them (`forget`) and replays each assigned
  changelog partition from its start.
* **A frozen worker's late writes.** When such a worker wakes up, its producer
  sends what it had buffered before it notices it lost its partitions: an older
  version of a record can land after the new owner's. `"o"` orders the versions of
  a record (all of them come from one partials partition), so on replay a record
  never replaces one with a higher `"o"`.

What is left: a stale late write that compaction keeps as the only version of its
key (after the newer one is compacted away) would win; the new owner overwrites it
the next time that record changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore

MEMORY = "memory://"


def version(value: Any) -> int:
    """The offset of the last partial applied to a table record (-1: none)."""
    if isinstance(value, dict):
        found = value.get("o")
        if isinstance(found, int):
            return found
    return -1


class ReplayedStore(MemoryStore[Any, Any]):
    """Faust's memory store, with a changelog replay in which a record never
    replaces a newer version of itself, and a way to forget everything."""

    def apply_changelog_batch(
        self, batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        data, partitions = self.data, self._key_partition
        for event in batch:
            key = to_key(event.key)
            if event.message.value is None:  # a tombstone: deleted
                data.pop(key, None)
                partitions.pop(key, None)
                continue
            value = to_value(event.value)
            if key in data and version(data[key]) > version(value):
                continue  # an older version written late (by a frozen worker that woke up)
            data[key] = value
            partitions[key] = event.message.partition

    def forget(self) -> None:
        """Drop every record: the next recovery reads them all from the changelog."""
        self.data.clear()
        self._key_partition.clear()


class ReplayedTable(faust.Table[Any, Any]):
    """A Faust table whose store is a `ReplayedStore`, whatever the app's store is."""

    def _new_store(self) -> ReplayedStore:
        return ReplayedStore(
            MEMORY,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
        )


def replayed_table(app: faust.App, name: str, partitions: int) -> ReplayedTable:
    """A JSON-keyed, JSON-valued `ReplayedTable` registered with `app` (as `app.Table` does)."""
    schema: Any = faust.Schema(key_serializer="json", value_serializer="json")
    table = ReplayedTable(
        app, name=name, default=None, partitions=partitions, schema=schema, beacon=app.tables.beacon
    )
    app.tables.add(table)
    return table


def forget_all(app: faust.App, tables: Iterable[ReplayedTable]) -> None:
    """Before an assignment: forget the tables' records and where their changelogs
    were read to, so recovery replays every assigned changelog partition from its
    start (Faust would otherwise go on from where it was for partitions it keeps)."""
    for table in tables:
        store = table.data
        assert isinstance(store, ReplayedStore)
        store.forget()
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    recovery.active_offsets.clear()
    recovery.standby_offsets.clear()
