"""Per-entity state of one kind (ticket, chat or survey) for the input partitions a
worker owns, with a per-batch record cache and an expiry index.

The intake stage folds a batch of events through `Batch` views; only when the
batch's outputs, changelog records and input offsets are committed does it call
`Batch.commit`, so the store always equals "the changelog up to the committed
offsets". Values are held encoded (orjson bytes): about a third of the memory of
the decoded dicts, and exactly what the changelog carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping

import orjson

from stream_app.core.lifecycle import State

#: state → event-time ms after which it may be dropped (None: keep).
Deadline = Callable[[State], int | None]
#: (key, encoded value or None for deleted): one changelog record.
Change = tuple[str, bytes | None]


def encode(state: State) -> bytes:
    """orjson's result keeps a ~4 KB buffer whatever its length; the copy is exact.
    Without it, held state costs ~16x its size."""
    return bytes(memoryview(orjson.dumps(state)))


class StateStore:
    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.partitions: dict[int, dict[str, bytes]] = {}
        #: partition → key → deadline, so a sweep touches only due keys.
        self.expiry: dict[int, dict[str, int]] = {}

    def load(self, partition: int, records: Iterable[Change]) -> None:
        """Replay a changelog partition (oldest first) into this store."""
        values = self.partitions.setdefault(partition, {})
        for key, value in records:
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        index = self.expiry[partition] = {}
        for key, value in values.items():
            when = self.deadline(orjson.loads(value))
            if when is not None:
                index[key] = when

    def drop(self, partition: int) -> None:
        self.partitions.pop(partition, None)
        self.expiry.pop(partition, None)

    def get(self, key: str, partition: int) -> State | None:
        """The key's state, looked up in its own partition first: an entity whose
        events arrive under different record keys still finds its state."""
        found = self.partitions.get(partition, {}).get(key)
        if found is None:
            for other, values in self.partitions.items():
                if other != partition and key in values:
                    found = values[key]
                    break
        return None if found is None else orjson.loads(found)

    def due(self, now_ms: int) -> dict[int, list[str]]:
        """Keys whose deadline has passed, per partition."""
        found: dict[int, list[str]] = {}
        for partition, index in self.expiry.items():
            keys = [key for key, when in index.items() if when < now_ms]
            if keys:
                found[partition] = keys
        return found

    def __len__(self) -> int:
        return sum(len(values) for values in self.partitions.values())


class Batch:
    """A record cache in front of a `StateStore` for one batch: reads see the
    batch's own writes; each changed key becomes one changelog record."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.dirty: dict[int, dict[str, State | None]] = {}

    def view(self, partition: int) -> PartitionView:
        return PartitionView(self, partition)

    def get(self, key: str, partition: int) -> State | None:
        own = self.dirty.get(partition)
        if own is not None and key in own:
            return own[key]
        for other, changes in self.dirty.items():
            if other != partition and key in changes:
                return changes[key]
        return self.store.get(key, partition)

    def changes(self) -> dict[int, list[Change]]:
        """The changelog records of this batch, per partition."""
        return {
            partition: [(key, None if value is None else encode(value)) for key, value in changes.items()]
            for partition, changes in self.dirty.items()
            if changes
        }

    def commit(self, encoded: dict[int, list[Change]]) -> None:
        """Apply `changes()` to the store once they are durable."""
        store = self.store
        for partition, changes in encoded.items():
            values = store.partitions.setdefault(partition, {})
            index = store.expiry.setdefault(partition, {})
            states = self.dirty[partition]
            for key, value in changes:
                if value is None:
                    values.pop(key, None)
                    index.pop(key, None)
                    continue
                values[key] = value
                when = store.deadline(states[key] or {})
                if when is None:
                    index.pop(key, None)
                else:
                    index[key] = when
        self.dirty = {}


class PartitionView(MutableMapping[str, State]):
    """What `Intake` folds into: one input partition's slice of a `Batch`."""

    def __init__(self, batch: Batch, partition: int) -> None:
        self.batch = batch
        self.partition = partition

    def __getitem__(self, key: str) -> State:
        found = self.batch.get(key, self.partition)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: State | None = None) -> State | None:  # type: ignore[override]
        found = self.batch.get(key, self.partition)
        return default if found is None else found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.batch.get(key, self.partition) is not None

    def __setitem__(self, key: str, value: State) -> None:
        self.batch.dirty.setdefault(self.partition, {})[key] = value

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError when absent, as a mapping must
        self.batch.dirty.setdefault(self.partition, {})[key] = None

    def __iter__(self) -> Iterator[str]:
        changes = self.batch.dirty.get(self.partition, {})
        stored = self.batch.store.partitions.get(self.partition, {})
        yield from (key for key in list(stored) if key not in changes)
        yield from (key for key, value in list(changes.items()) if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)
