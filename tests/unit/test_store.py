"""The intake state store: batch record cache, changelog records, restore, expiry."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.lifecycle import State
from stream_app.core.store import Batch, Change, StateStore, encode


def deadline(state: State) -> int | None:
    return state.get("until")


def test_a_batch_reads_its_own_writes_and_commits_one_record_per_key() -> None:
    store = StateStore(deadline)
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


def test_deletes_become_tombstones_and_a_missing_key_raises() -> None:
    store = StateStore(deadline)
    store.load(1, [("a", b'{"until":5}')])
    batch = Batch(store)
    view = batch.view(1)
    del view["a"]
    assert "a" not in view
    try:
        del view["b"]
    except KeyError:
        pass
    else:
        raise AssertionError("deleting an absent key must raise KeyError")
    changes = batch.changes()
    assert changes == {1: [("a", None)]}
    batch.commit(changes)
    assert len(store) == 0 and store.due(10) == {}


def test_an_entity_under_another_record_key_is_found_in_its_partition() -> None:
    store = StateStore(deadline)
    store.load(2, [("r1", b"{}")])
    batch = Batch(store)
    assert "r1" in batch.view(0)  # same worker, other partition
    store.drop(2)
    assert "r1" not in Batch(store).view(0)


def test_due_lists_keys_past_their_deadline_per_partition() -> None:
    store = StateStore(deadline)
    store.load(0, [("old", b'{"until":10}'), ("new", b'{"until":100}'), ("open", b"{}")])
    batch = Batch(store)
    batch.view(3)["late"] = {"until": 20}
    batch.commit(batch.changes())
    assert store.due(50) == {0: ["old"], 3: ["late"]}


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


@given(ops)
def test_restoring_from_the_changelog_rebuilds_the_same_store(
    batches: list[list[tuple[int, str, int | None]]],
) -> None:
    """Whatever the batches did, replaying their changelog records gives the same state."""
    store = StateStore(deadline)
    changelog: dict[int, list[Change]] = {}
    model: dict[int, dict[str, State]] = {}
    for operations in batches:
        batch = Batch(store)
        for partition, key, value in operations:
            view = batch.view(partition)
            own = key in batch.dirty.get(partition, {}) or key in store.partitions.get(partition, {})
            if value is None:
                if own and batch.get(key, partition) is not None:
                    del view[key]
                    model.setdefault(partition, {}).pop(key, None)
            else:
                view[key] = {"until": value}
                model.setdefault(partition, {})[key] = {"until": value}
        changes = batch.changes()
        batch.commit(changes)
        for partition, records in changes.items():
            changelog.setdefault(partition, []).extend(records)
    restored = StateStore(deadline)
    for partition, records in changelog.items():
        restored.load(partition, records)
    assert {p: v for p, v in restored.partitions.items() if v} == {
        p: v for p, v in store.partitions.items() if v
    }
    assert restored.due(5) == store.due(5)
    for partition, values in model.items():
        for key, state in values.items():
            assert restored.get(key, partition) == state
