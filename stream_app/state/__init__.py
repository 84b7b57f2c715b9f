"""Where the intake keeps its per-entity state: chosen by `STREAM_APP_STORE`.

- `memory://`: every state in the Python heap (`MemoryStateStore`);
- `rocksdb://`: off-heap, in RocksDB under `<STREAM_APP_DATA_DIR>/intake-state/<instance>`;
- `rocksdb://<dir>`: the same under `<dir>/intake-state/<instance>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from stream_app.config import Settings
from stream_app.core.store import Deadline, MemoryStateStore, StateStore

ROCKSDB = "rocksdb://"


def state_dir(settings: Settings) -> Path:
    """The worker's RocksDB directory (wiped when the worker starts)."""
    base = settings.store.removeprefix(ROCKSDB) or settings.data_dir
    return Path(base) / "intake-state" / re.sub(r"[^A-Za-z0-9_.-]", "_", settings.instance)


def open_stores(
    settings: Settings, deadlines: Mapping[str, Deadline], cache_entries: int | None = None
) -> dict[str, StateStore]:
    """One store per kind (`deadlines`: kind → state → expiry ms), all sharing one
    RocksDB per process for `rocksdb://`. `cache_entries`: hot cache size per kind."""
    if settings.store == "memory://":
        return {kind: MemoryStateStore(deadline) for kind, deadline in deadlines.items()}
    if not settings.store.startswith(ROCKSDB):
        raise ValueError(f"unknown store {settings.store!r}")
    from stream_app.state.rocksdb_store import DEFAULT_CACHE_ENTRIES, RocksDB, RocksDBStateStore

    db = RocksDB(state_dir(settings))
    entries = DEFAULT_CACHE_ENTRIES if cache_entries is None else cache_entries
    return {kind: RocksDBStateStore(db, kind, deadline, entries) for kind, deadline in deadlines.items()}
