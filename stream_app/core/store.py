"""Per-entity state of one kind (ticket, chat or survey) for the input partitions a
worker owns, with a per-batch record cache and an expiry index.

The intake stage folds a batch of events through `Batch` views; only when the
batch's outputs, changelog records and input offsets are committed does it call
`Batch.commit`, so the store always equals "the changelog up to the committed
offsets". Values are held encoded (orjson bytes): about a third of the memory of
the decoded dicts, and exactly what the changelog carries.

`StateStore` is the interface `Batch` and `PartitionView` use; `MemoryStateStore`
keeps everything in the Python heap (`STREAM_APP_STORE=memory://`), and
`stream_app.state.rocksdb_store.RocksDBStateStore` keeps it off-heap
(`rocksdb://`). Every key lives in exactly one input partition: lookups never
look in another partition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping

import orjson
from mypy_extensions import mypyc_attr

from stream_app.core.lifecycle import State

#: state → event-time ms after which it may be dropped (None: keep).
Deadline = Callable[[State], int | None]
#: (key, encoded value or None for deleted): one changelog record.
Change = tuple[str, bytes | None]


def encode(state: State) -> bytes:
    """orjson's result keeps a ~4 KB buffer whatever its length; the copy is exact.
    Without it, held state costs ~16x its size."""
    return bytes(memoryview(orjson.dumps(state)))


@mypyc_attr(allow_interpreted_subclasses=True)  # RocksDBStateStore (state/) is not compiled
class StateStore(ABC):
    """Encoded entity states per input partition, plus an expiry index.

    Keys are entity ids (str); values are `encode`d states (bytes). A partition is
    "held" from its `load` (or first `put_many`) until its `drop`.
    """

    def __init__(self, deadline: Deadline) -> None:
        #: state → event-time ms after which it may go (None: no deadline yet).
        self.deadline = deadline

    @abstractmethod
    def reset(self) -> None:
        """Forget every partition (before state is restored from the changelog again)."""

    def load(self, partition: int, records: Iterable[Change]) -> None:
        """Replace the partition's contents with a changelog replay.

        `records` is consumed once, oldest first; a None value deletes its key.
        """
        self.begin_load(partition)
        self.replay(partition, records)
        self.end_load(partition)

    @abstractmethod
    def begin_load(self, partition: int) -> None:
        """Empty the partition to replay its changelog into, in one or more `replay`
        calls (say one per fetched chunk, so the changelog is never all in memory),
        then `end_load`. Until `end_load`, `due` and `len` may miss its keys."""

    @abstractmethod
    def replay(self, partition: int, records: Iterable[Change]) -> None:
        """Apply the next changelog records (oldest first; None deletes its key)."""

    @abstractmethod
    def end_load(self, partition: int) -> None:
        """Finish a load: index the partition's deadlines."""

    @abstractmethod
    def drop(self, partition: int) -> None:
        """Forget one partition (revoked from this worker)."""

    @abstractmethod
    def get(self, key: str, partition: int) -> State | None:
        """The key's decoded state in that partition (never another one), or None."""

    @abstractmethod
    def put_many(self, partition: int, changes: Iterable[Change], states: Mapping[str, State | None]) -> None:
        """Apply changelog records once they are durable.

        `states[key]` is the decoded form of each non-None value in `changes` (so the
        deadline is computed without decoding again).
        """

    @abstractmethod
    def keys(self, partition: int) -> list[str]:
        """Every key held in the partition (a snapshot: safe to mutate the store after)."""

    @abstractmethod
    def due(self, now_ms: int) -> dict[int, list[str]]:
        """Keys whose deadline (event-time ms) is before `now_ms`, per partition."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of keys held, over all partitions."""

    def close(self) -> None:  # noqa: B027 (optional hook; nothing to release in memory)
        """Release files and native memory, if any (RocksDB: the database every kind
        shares, so call it once, when the worker stops)."""


class MemoryStateStore(StateStore):
    """Everything in the Python heap: dicts of encoded values per partition."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__(deadline)
        self.partitions: dict[int, dict[str, bytes]] = {}
        #: partition → key → deadline, so a sweep touches only due keys.
        self.expiry: dict[int, dict[str, int]] = {}

    def reset(self) -> None:
        self.partitions.clear()
        self.expiry.clear()

    def begin_load(self, partition: int) -> None:
        self.partitions[partition] = {}
        self.expiry[partition] = {}

    def replay(self, partition: int, records: Iterable[Change]) -> None:
        values = self.partitions.setdefault(partition, {})
        for key, value in records:
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value

    def end_load(self, partition: int) -> None:
        index = self.expiry[partition] = {}
        for key, value in self.partitions.get(partition, {}).items():
            when = self.deadline(orjson.loads(value))
            if when is not None:
                index[key] = when

    def drop(self, partition: int) -> None:
        self.partitions.pop(partition, None)
        self.expiry.pop(partition, None)

    def get(self, key: str, partition: int) -> State | None:
        found = self.partitions.get(partition, {}).get(key)
        return None if found is None else orjson.loads(found)

    def put_many(self, partition: int, changes: Iterable[Change], states: Mapping[str, State | None]) -> None:
        values = self.partitions.setdefault(partition, {})
        index = self.expiry.setdefault(partition, {})
        for key, value in changes:
            if value is None:
                values.pop(key, None)
                index.pop(key, None)
                continue
            values[key] = value
            when = self.deadline(states[key] or {})
            if when is None:
                index.pop(key, None)
            else:
                index[key] = when

    def keys(self, partition: int) -> list[str]:
        return list(self.partitions.get(partition, {}))

    def due(self, now_ms: int) -> dict[int, list[str]]:
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
        #: partition → key → new state (None: deleted) since the batch began.
        self.dirty: dict[int, dict[str, State | None]] = {}

    def view(self, partition: int) -> PartitionView:
        return PartitionView(self, partition)

    def get(self, key: str, partition: int) -> State | None:
        """The key's state in this partition only: the batch's write, else the store's."""
        own = self.dirty.get(partition)
        if own is not None and key in own:
            return own[key]
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
        for partition, changes in encoded.items():
            self.store.put_many(partition, changes, self.dirty[partition])
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
        yield from (key for key in self.batch.store.keys(self.partition) if key not in changes)
        yield from (key for key, value in list(changes.items()) if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)
