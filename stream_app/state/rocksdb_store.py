"""Intake state off the Python heap, in RocksDB (`STREAM_APP_STORE=rocksdb://`).

One RocksDB per worker process (`RocksDB`), shared by the ticket, chat and survey
stores (`RocksDBStateStore`, one per kind). It is a cache of the changelog
topics, which stay the source of truth: the directory is wiped when the worker
starts, and the write-ahead log is off (a crash loses nothing the changelog
does not hold).

Key layout (one column family; big-endian integers, so byte order = numeric order):

    b"v" kind 0x00 partition:u32 key:utf-8             → deadline:i64 + encoded state
    b"x" kind 0x00 partition:u32 deadline:u64 key:utf-8 → b""   (expiry index)

The index deadline is offset by 2**63 so negative times still sort first. A
value carries its own deadline (an 8-byte header, `NO_DEADLINE` when there is
none), so an update finds the index entry it replaces without decoding the
state. `drop(partition)` is two range deletes; `due(now)` is one range scan per
partition over the index, ending at `now`.

A small LRU of stored values (header included; None for "known absent") sits in
front: the intake reads a state just before it writes it, so the write usually
finds its old deadline there. It is write-through, so evicting never loses data.
"""

from __future__ import annotations

import fcntl
import shutil
import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, cast

import orjson
from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from stream_app.core.lifecycle import State
from stream_app.core.store import Change, Deadline, StateStore

#: Hot cache size per kind (entries), unless told otherwise.
DEFAULT_CACHE_ENTRIES = 4096
#: RocksDB's block cache (bytes, data + index + filter blocks) for the whole worker.
DEFAULT_BLOCK_CACHE_BYTES = 16 << 20
#: One memtable's size (bytes); at most `MEMTABLES` of them exist at once.
DEFAULT_WRITE_BUFFER_BYTES = 8 << 20
MEMTABLES = 2
#: Changelog records folded into one write batch during `load`.
LOAD_CHUNK = 10_000

#: Header value of a state without a deadline.
NO_DEADLINE = -(2**63)
_HEADER = struct.Struct(">q")
_INDEX_TIME = struct.Struct(">Q")
_HEADER_SIZE = _HEADER.size
_PARTITION = struct.Struct(">I")


def _index_time(when: int) -> bytes:
    return _INDEX_TIME.pack(when + 2**63)


def _after(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def tuned_options(block_cache_bytes: int, write_buffer_bytes: int) -> Options:
    """RocksDB options for a small, bounded footprint on a 2-core worker.

    Memory RocksDB holds outside the Python heap: the block cache (data blocks),
    up to `MEMTABLES` memtables, and the open files' index and bloom filter blocks
    (about 5 bytes per state: ~9 MB at 1.75 M). Those stay out of the block cache
    on purpose: there, data blocks evict them and every lookup of a new key (a
    bloom filter miss) re-reads a whole filter block (measured: 94 µs instead of
    8 µs per miss at 1.75 M states). lz4 and 8 KB blocks: the fastest random
    reads we measured (zstd halves the disk use but slows reads).
    """
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_max_background_jobs(2)
    options.set_write_buffer_size(write_buffer_bytes)
    options.set_max_write_buffer_number(MEMTABLES)
    options.set_db_write_buffer_size(write_buffer_bytes * MEMTABLES)
    options.set_target_file_size_base(32 << 20)
    options.set_max_bytes_for_level_base(128 << 20)
    options.set_max_open_files(512)
    options.set_compression_type(DBCompressionType.lz4())
    options.set_bottommost_compression_type(DBCompressionType.lz4())
    options.set_keep_log_file_num(2)
    options.set_max_log_file_size(1 << 20)
    table = BlockBasedOptions()
    table.set_block_cache(Cache(block_cache_bytes))
    table.set_block_size(8 << 10)
    table.set_bloom_filter(10, False)
    table.set_cache_index_and_filter_blocks(False)
    options.set_block_based_table_factory(table)
    return options


class RocksDB:
    """The worker's one state database at `path`, wiped on open.

    A lock file next to it (`<path>.lock`) keeps a second process with the same
    instance name from wiping a directory in use.
    """

    def __init__(
        self,
        path: Path,
        block_cache_bytes: int = DEFAULT_BLOCK_CACHE_BYTES,
        write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_BYTES,
    ) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: IO[bytes] | None = open(path.with_name(path.name + ".lock"), "wb")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RuntimeError(f"{path} is in use by another worker with the same instance name") from None
        if path.exists():
            shutil.rmtree(path)
        self.db: Rdict | None = Rdict(str(path), tuned_options(block_cache_bytes, write_buffer_bytes))
        writes = WriteOptions()
        writes.disable_wal = True  # type: ignore[method-assign,assignment]  # a property, not as stubbed
        self.db.set_write_options(writes)

    @property
    def rdict(self) -> Rdict:
        if self.db is None:
            raise RuntimeError(f"state database {self.path} is closed")
        return self.db

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """Stored values of `keys` (None where absent), in one multi-get."""
        wanted: list[str | int | float | bytes | bool] = list(keys)
        return cast("list[bytes | None]", self.rdict.get(wanted))

    def scan(self, begin: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs with begin <= key < end, in key order."""
        bounds = ReadOptions()
        bounds.set_iterate_upper_bound(end)
        yield from self.rdict.items(from_key=begin, read_opt=bounds)

    def scan_keys(self, begin: bytes, end: bytes) -> Iterator[bytes]:
        bounds = ReadOptions()
        bounds.set_iterate_upper_bound(end)
        yield from self.rdict.keys(from_key=begin, read_opt=bounds)

    def memory(self) -> dict[str, int]:
        """RocksDB's own memory (bytes), by use."""
        db = self.rdict
        names = {
            "block_cache": "rocksdb.block-cache-usage",
            "memtables": "rocksdb.cur-size-all-mem-tables",
            "table_readers": "rocksdb.estimate-table-readers-mem",
        }
        return {name: db.property_int_value(prop) or 0 for name, prop in names.items()}

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


class RocksDBStateStore(StateStore):
    """One kind's states in a shared `RocksDB`, behind a bounded LRU of values."""

    def __init__(
        self, db: RocksDB, kind: str, deadline: Deadline, cache_entries: int = DEFAULT_CACHE_ENTRIES
    ) -> None:
        super().__init__(deadline)
        self.db = db
        self.cache_entries = cache_entries
        name = kind.encode()
        if b"\x00" in name or not name:
            raise ValueError(f"bad kind {kind!r}")
        self._values = b"v" + name + b"\x00"
        self._index = b"x" + name + b"\x00"
        #: value key → stored bytes (header + state), or None when known absent.
        self._cache: OrderedDict[bytes, bytes | None] = OrderedDict()
        #: held partition → number of keys in it.
        self._counts: dict[int, int] = {}

    # --- keys -------------------------------------------------------------------------

    def _value_prefix(self, partition: int) -> bytes:
        return self._values + _PARTITION.pack(partition)

    def _index_prefix(self, partition: int) -> bytes:
        return self._index + _PARTITION.pack(partition)

    def _index_key(self, partition: int, when: int, key: str) -> bytes:
        return self._index_prefix(partition) + _index_time(when) + key.encode()

    # --- the hot cache -----------------------------------------------------------------

    def _stored(self, value_key: bytes) -> bytes | None:
        cache = self._cache
        if value_key in cache:
            cache.move_to_end(value_key)
            return cache[value_key]
        stored: bytes | None = self.db.rdict.get(value_key)
        self._remember(value_key, stored)
        return stored

    def _remember(self, value_key: bytes, stored: bytes | None) -> None:
        cache = self._cache
        cache[value_key] = stored
        cache.move_to_end(value_key)
        while len(cache) > self.cache_entries:
            cache.popitem(last=False)

    def _forget(self, partition: int) -> None:
        prefix = self._value_prefix(partition)
        for value_key in [k for k in self._cache if k.startswith(prefix)]:
            del self._cache[value_key]

    # --- StateStore -------------------------------------------------------------------

    def reset(self) -> None:
        batch = WriteBatch(raw_mode=True)
        for prefix in (self._values, self._index):
            batch.delete_range(prefix, _after(prefix))
        self.db.rdict.write(batch)
        self._cache.clear()
        self._counts.clear()

    def drop(self, partition: int) -> None:
        batch = WriteBatch(raw_mode=True)
        for prefix in (self._value_prefix(partition), self._index_prefix(partition)):
            batch.delete_range(prefix, _after(prefix))
        self.db.rdict.write(batch)
        self._forget(partition)
        self._counts.pop(partition, None)

    def begin_load(self, partition: int) -> None:
        self.drop(partition)
        self._counts[partition] = 0

    def replay(self, partition: int, records: Iterable[Change]) -> None:
        """Write each record's state with its deadline header, `LOAD_CHUNK` records per
        write batch (the latest of a key within a chunk only). No index entries yet:
        a later record may still replace the state (see `end_load`)."""
        chunk: dict[str, bytes | None] = {}
        for key, value in records:
            chunk[key] = value
            if len(chunk) >= LOAD_CHUNK:
                self._write_chunk(partition, chunk)
                chunk = {}
        self._write_chunk(partition, chunk)

    def _write_chunk(self, partition: int, chunk: dict[str, bytes | None]) -> None:
        prefix = self._value_prefix(partition)
        batch = WriteBatch(raw_mode=True)
        for key, value in chunk.items():
            if value is None:
                batch.delete(prefix + key.encode())
            else:
                when = self.deadline(orjson.loads(value))
                header = _HEADER.pack(NO_DEADLINE if when is None else when)
                batch.put(prefix + key.encode(), header + value)
        self.db.rdict.write(batch)

    def end_load(self, partition: int) -> None:
        """Index every state of the partition (one scan) and count them."""
        prefix = self._value_prefix(partition)
        index = self._index_prefix(partition)
        skip = len(prefix)
        count = 0
        batch = WriteBatch(raw_mode=True)
        for value_key, stored in self.db.scan(prefix, _after(prefix)):
            count += 1
            (when,) = _HEADER.unpack_from(stored)
            if when != NO_DEADLINE:
                batch.put(index + _index_time(when) + value_key[skip:], b"")
                if len(batch) >= LOAD_CHUNK:
                    self.db.rdict.write(batch)
                    batch = WriteBatch(raw_mode=True)
        self.db.rdict.write(batch)
        self._counts[partition] = count

    def get(self, key: str, partition: int) -> State | None:
        stored = self._stored(self._value_prefix(partition) + key.encode())
        return None if stored is None else orjson.loads(memoryview(stored)[_HEADER_SIZE:])

    def put_many(self, partition: int, changes: Iterable[Change], states: Mapping[str, State | None]) -> None:
        """One write batch: values, their index entries, and the stale entries removed."""
        prefix = self._value_prefix(partition)
        changes = list(changes)
        value_keys = [prefix + key.encode() for key, _ in changes]
        cache = self._cache
        missing = [k for k in value_keys if k not in cache]
        before: dict[bytes, bytes | None] = {}
        if missing:
            before = dict(zip(missing, self.db.get_many(missing), strict=True))
        before.update((k, cache[k]) for k in value_keys if k in cache)
        count = self._counts.get(partition, 0)
        batch = WriteBatch(raw_mode=True)
        for (key, value), value_key in zip(changes, value_keys, strict=True):
            old = before[value_key]
            old_when = NO_DEADLINE if old is None else _HEADER.unpack_from(old)[0]
            if value is None:
                new_when, stored = NO_DEADLINE, None
                if old is not None:
                    batch.delete(value_key)
                    count -= 1
            else:
                when = self.deadline(states[key] or {})
                new_when = NO_DEADLINE if when is None else when
                stored = _HEADER.pack(new_when) + value
                batch.put(value_key, stored)
                if old is None:
                    count += 1
            if old_when != new_when:
                if old_when != NO_DEADLINE:
                    batch.delete(self._index_key(partition, old_when, key))
                if new_when != NO_DEADLINE:
                    batch.put(self._index_key(partition, new_when, key), b"")
            before[value_key] = stored  # a key changed twice in one call sees its first change
        self.db.rdict.write(batch)
        self._counts[partition] = count
        for value_key in value_keys:
            self._remember(value_key, before[value_key])

    def keys(self, partition: int) -> list[str]:
        prefix = self._value_prefix(partition)
        skip = len(prefix)
        return [k[skip:].decode() for k in self.db.scan_keys(prefix, _after(prefix))]

    def due(self, now_ms: int) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for partition in sorted(self._counts):
            prefix = self._index_prefix(partition)
            skip = len(prefix) + _INDEX_TIME.size
            keys = [k[skip:].decode() for k in self.db.scan_keys(prefix, prefix + _index_time(now_ms))]
            if keys:
                found[partition] = keys
        return found

    def __len__(self) -> int:
        return sum(self._counts.values())

    def close(self) -> None:
        self._cache.clear()
        self.db.close()
