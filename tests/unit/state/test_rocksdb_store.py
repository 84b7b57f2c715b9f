"""What only the RocksDB store has: a shared database, a wiped start, a lock, a
bounded hot cache, chunked restore, and the factory choosing it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.config import Settings
from stream_app.core.lifecycle import State
from stream_app.core.store import Batch, MemoryStateStore
from stream_app.state import open_stores, rocksdb_store, state_dir
from stream_app.state.rocksdb_store import RocksDB, RocksDBStateStore


def deadline(state: State) -> int | None:
    return state.get("until")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[RocksDB]:
    opened = RocksDB(tmp_path / "state")
    yield opened
    opened.close()


def test_kinds_share_one_database_without_sharing_keys(db: RocksDB) -> None:
    tickets = RocksDBStateStore(db, "ticket", deadline)
    chats = RocksDBStateStore(db, "chat", deadline)
    tickets.load(0, [("k", b'{"until":1}')])
    chats.load(0, [("k", b'{"until":2}')])
    assert tickets.get("k", 0) == {"until": 1} and chats.get("k", 0) == {"until": 2}
    chats.reset()
    assert chats.get("k", 0) is None and chats.due(10) == {}
    assert tickets.get("k", 0) == {"until": 1} and tickets.due(10) == {0: ["k"]}


def test_a_database_starts_empty_and_only_one_process_may_use_it(tmp_path: Path) -> None:
    path = tmp_path / "state"
    first = RocksDB(path)
    RocksDBStateStore(first, "ticket", deadline).load(0, [("k", b"{}")])
    with pytest.raises(RuntimeError, match="in use"):
        RocksDB(path)
    first.close()
    second = RocksDB(path)  # wiped: the changelog is the source of truth
    try:
        assert RocksDBStateStore(second, "ticket", deadline).keys(0) == []
    finally:
        second.close()


def test_the_hot_cache_stays_bounded(db: RocksDB) -> None:
    store = RocksDBStateStore(db, "chat", deadline, cache_entries=5)
    batch = Batch(store)
    for i in range(50):
        assert batch.view(0).get(f"k{i}") is None
        batch.view(0)[f"k{i}"] = {"until": i}
    batch.commit(batch.changes())
    assert len(store._cache) == 5
    assert [store.get(f"k{i}", 0) for i in range(50)] == [{"until": i} for i in range(50)]
    assert len(store._cache) == 5 and len(store) == 50


def test_a_restore_is_written_in_chunks(db: RocksDB, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rocksdb_store, "LOAD_CHUNK", 2)
    store = RocksDBStateStore(db, "ticket", deadline)
    records = [(f"k{i % 7}", None if i % 5 == 4 else b'{"until":%d}' % i) for i in range(40)]
    expected: dict[str, bytes | None] = {}
    for key, value in records:
        expected[key] = value
    store.load(3, records)
    held = {k: v for k, v in expected.items() if v is not None}
    assert sorted(store.keys(3)) == sorted(held) and len(store) == len(held)
    assert {k: store.get(k, 3) for k in held} == {k: {"until": int(v[9:-1])} for k, v in held.items()}
    assert sorted(store.due(10**6)[3]) == sorted(held)


def test_due_is_in_deadline_order(db: RocksDB) -> None:
    store = RocksDBStateStore(db, "ticket", deadline)
    store.load(0, [("c", b'{"until":30}'), ("a", b'{"until":20}'), ("b", b'{"until":-10}')])
    assert store.due(100) == {0: ["b", "a", "c"]}


def test_the_factory_chooses_the_store_from_settings(tmp_path: Path) -> None:
    deadlines = {"ticket": deadline, "chat": deadline}
    memory = open_stores(Settings(), deadlines)
    assert all(type(s) is MemoryStateStore for s in memory.values())
    settings = Settings(store="rocksdb://", data_dir=str(tmp_path / "data"), instance_id="host/1")
    assert state_dir(settings) == tmp_path / "data" / "intake-state" / "host_1"
    stores = open_stores(settings, deadlines, cache_entries=7)
    try:
        assert all(isinstance(s, RocksDBStateStore) and s.cache_entries == 7 for s in stores.values())
        assert state_dir(settings).is_dir()
    finally:
        stores["ticket"].close()
    elsewhere = Settings(store=f"rocksdb://{tmp_path}/other", instance_id="w")
    assert state_dir(elsewhere) == tmp_path / "other" / "intake-state" / "w"
