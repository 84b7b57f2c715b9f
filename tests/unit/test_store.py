"""The intake state store: batch record cache, changelog records, restore, expiry.

Every behavioural test runs against both implementations (`memory://` and
`rocksdb://`); the RocksDB one gets a hot cache of 3 entries, so most reads and
writes also go past an evicted cache.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.core.lifecycle import State
from stream_app.core.store import Batch, Change, Deadline, MemoryStateStore, StateStore, encode
from stream_app.state.rocksdb_store import RocksDB, RocksDBStateStore

MakeStore = Callable[[Deadline], StateStore]


def deadline(state: State) -> int | None:
    return state.get("until")


@pytest.fixture(params=["memory", "rocksdb"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """Builds empty stores of one implementation (each RocksDB one in its own directory)."""
    opened: list[StateStore] = []

    def make(deadline: Deadline) -> StateStore:
        store: StateStore
        if request.param == "memory":
            store = MemoryStateStore(deadline)
        else:
            store = RocksDBStateStore(RocksDB(tmp_path / f"db{len(opened)}"), "ticket", deadline, 3)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> StateStore:
    return make_store(deadline)


def held(store: StateStore, partitions: range = range(4)) -> dict[int, dict[str, State]]:
    """Everything a store holds, decoded, per non-empty partition."""
    found = {p: {k: store.get(k, p) for k in store.keys(p)} for p in partitions}
    return {p: {k: v for k, v in values.items() if v is not None} for p, values in found.items() if values}


def sorted_due(store: StateStore, now_ms: int) -> dict[int, list[str]]:
    return {p: sorted(keys) for p, keys in store.due(now_ms).items()}


def test_a_batch_reads_its_own_writes_and_commits_one_record_per_key(store: StateStore) -> None:
    batch = Batch(store)
    view = batch.view(0)
    view["t1"] = {"n": 1}
    view["t1"] = {"n": 2}
    assert view["t1"] == {"n": 2}
    assert store.get("t1", 0) is None  # nothing is stored before the commit
    changes = batch.changes()
    assert changes == {0: [("t1", b'{"n":2}')]}
    batch.commit(changes)
    assert store.get("t1", 0) == {"n": 2}
    assert len(store) == 1


def test_deletes_become_tombstones_and_a_missing_key_raises(store: StateStore) -> None:
    store.load(1, [("a", b'{"until":5}')])
    batch = Batch(store)
    view = batch.view(1)
    del view["a"]
    assert "a" not in view
    with pytest.raises(KeyError):
        del view["b"]
    changes = batch.changes()
    assert changes == {1: [("a", None)]}
    batch.commit(changes)
    assert len(store) == 0 and store.due(10) == {}
    assert store.get("a", 1) is None


def test_a_key_is_only_found_in_its_own_partition(store: StateStore) -> None:
    store.load(2, [("r1", b'{"n":1}')])
    batch = Batch(store)
    assert "r1" not in batch.view(0)  # same worker, other partition: not shared
    assert store.get("r1", 0) is None
    assert batch.view(2)["r1"] == {"n": 1}
    batch.view(3)["w"] = {"n": 2}
    assert batch.get("w", 0) is None and "w" not in batch.view(0)  # nor are a batch's writes
    batch.view(0)["r1"] = {"n": 9}  # a separate copy, in partition 0
    batch.commit(batch.changes())
    assert store.get("r1", 2) == {"n": 1} and store.get("r1", 0) == {"n": 9}
    store.drop(2)
    assert "r1" not in Batch(store).view(2)
    assert store.get("r1", 0) == {"n": 9}


def test_due_lists_exactly_the_keys_past_their_deadline_per_partition(store: StateStore) -> None:
    store.load(
        0, [("old", b'{"until":10}'), ("new", b'{"until":100}'), ("open", b"{}"), ("edge", b'{"until":50}')]
    )
    batch = Batch(store)
    batch.view(3)["late"] = {"until": 20}
    batch.view(3)["neg"] = {"until": -5}
    batch.commit(batch.changes())
    assert sorted_due(store, 50) == {0: ["old"], 3: ["late", "neg"]}  # 50 is not before 50
    assert sorted_due(store, 51) == {0: ["edge", "old"], 3: ["late", "neg"]}
    assert sorted_due(store, 0) == {3: ["neg"]}
    assert sorted_due(store, 10**15) == {0: ["edge", "new", "old"], 3: ["late", "neg"]}


def test_an_update_or_delete_moves_the_expiry_entry(store: StateStore) -> None:
    store.load(0, [(k, b'{"until":10}') for k in ("later", "never", "gone", "same")])
    batch = Batch(store)
    view = batch.view(0)
    view["later"] = {"until": 100}
    view["never"] = {"n": 1}
    del view["gone"]
    view["same"] = {"until": 10, "n": 2}
    batch.commit(batch.changes())
    assert sorted_due(store, 50) == {0: ["same"]}
    assert sorted_due(store, 101) == {0: ["later", "same"]}
    assert store.get("same", 0) == {"until": 10, "n": 2}
    assert len(store) == 3


def test_load_replays_deletes_and_replaces_the_partition(store: StateStore) -> None:
    store.load(0, [("stale", b'{"until":1}')])
    store.load(1, [("other", b'{"until":1}')])
    records: list[Change] = [
        ("a", b'{"until":1}'),
        ("b", b'{"until":2}'),
        ("a", None),
        ("c", b'{"until":3}'),
        ("c", None),
        ("c", b'{"until":30}'),
        ("d", None),  # a tombstone for a key never seen
    ]
    store.load(0, iter(records))  # consumed once, as a generator would be
    assert held(store) == {0: {"b": {"until": 2}, "c": {"until": 30}}, 1: {"other": {"until": 1}}}
    assert sorted_due(store, 10) == {0: ["b"], 1: ["other"]}
    assert len(store) == 3


def test_a_load_may_come_in_chunks(store: StateStore) -> None:
    store.load(0, [("stale", b'{"until":1}')])
    store.begin_load(0)
    assert store.get("stale", 0) is None
    store.replay(0, [("a", b'{"until":1}'), ("b", b'{"until":2}')])
    store.replay(0, iter([("a", None), ("b", b'{"until":20}'), ("c", b"{}")]))
    store.end_load(0)
    assert held(store) == {0: {"b": {"until": 20}, "c": {}}}
    assert store.due(10) == {} and sorted_due(store, 21) == {0: ["b"]} and len(store) == 2


def test_drop_and_reset_forget_state_and_its_expiry(store: StateStore) -> None:
    for partition in (0, 1):
        store.load(partition, [("a", b'{"until":1}'), ("b", b'{"until":2}')])
    store.get("a", 0)  # (warm the RocksDB store's cache)
    store.drop(0)
    assert store.get("a", 0) is None and store.keys(0) == []
    assert sorted_due(store, 10) == {1: ["a", "b"]} and len(store) == 2
    store.reset()
    assert store.get("a", 1) is None and store.due(10) == {} and len(store) == 0
    store.load(1, [("c", b'{"until":3}')])  # usable again after a reset
    assert held(store) == {1: {"c": {"until": 3}}}


def test_a_view_iterates_stored_and_batch_keys(store: StateStore) -> None:
    store.load(0, [("a", b"{}"), ("b", b"{}"), ("c", b"{}")])
    store.load(1, [("z", b"{}")])
    batch = Batch(store)
    view = batch.view(0)
    del view["b"]
    view["d"] = {}
    view["a"] = {"n": 1}
    assert sorted(view) == ["a", "c", "d"] and len(view) == 3
    assert sorted(store.keys(0)) == ["a", "b", "c"]


def test_many_keys_survive_the_hot_cache(store: StateStore) -> None:
    """More keys than the (RocksDB) hot cache holds: nothing is lost, every update
    finds and replaces its old expiry entry."""
    for round_ in range(3):
        batch = Batch(store)
        for i in range(40):
            view = batch.view(i % 2)
            before = view.get(f"k{i}")
            assert before == (None if round_ == 0 else {"until": round_ * 100 + i - 100})
            view[f"k{i}"] = {"until": round_ * 100 + i}
        batch.commit(batch.changes())
    assert len(store) == 40
    assert sorted_due(store, 205) == {0: ["k0", "k2", "k4"], 1: ["k1", "k3"]}
    assert held(store) == {p: {f"k{i}": {"until": 200 + i} for i in range(p, 40, 2)} for p in (0, 1)}


def test_held_values_are_exactly_sized() -> None:
    value = encode({"ids": ["x" * 30]})
    assert sys.getsizeof(value) < 200  # orjson's own result would keep a ~4 KB buffer


keys = st.sampled_from(["a", "b", "c", "d"])
ops = st.lists(
    st.lists(
        st.tuples(st.integers(0, 2), keys, st.one_of(st.none(), st.integers(0, 9))),
        max_size=6,
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_restoring_from_the_changelog_rebuilds_the_same_store(
    make_store: MakeStore, batches: list[list[tuple[int, str, int | None]]]
) -> None:
    """Whatever the batches did, replaying their changelog records gives the same state."""
    store = make_store(deadline)
    changelog: dict[int, list[Change]] = {}
    model: dict[int, dict[str, State]] = {}
    for operations in batches:
        batch = Batch(store)
        for partition, key, value in operations:
            view = batch.view(partition)
            if value is None:
                if key in view:
                    del view[key]
                    model.setdefault(partition, {}).pop(key, None)
            else:
                view[key] = {"until": value}
                model.setdefault(partition, {})[key] = {"until": value}
        changes = batch.changes()
        batch.commit(changes)
        for partition, records in changes.items():
            changelog.setdefault(partition, []).extend(records)
    restored = make_store(deadline)
    for partition, records in changelog.items():
        restored.load(partition, records)
    expected = {p: values for p, values in model.items() if values}
    assert held(store) == held(restored) == expected
    assert sorted_due(restored, 5) == sorted_due(store, 5)
    assert len(restored) == len(store) == sum(len(v) for v in model.values())
