"""The merge stage's table store: a changelog replay never lets an older version of
a record (a frozen worker's late write) replace a newer one, and `forget` empties it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust

from stream_app.merge_tables import ReplayedStore, replayed_table, version


def _record(key: str, value: dict[str, Any] | None, partition: int = 0) -> Any:
    """What Faust hands a store on recovery: an event with `.key`, `.value`, `.message`."""
    return SimpleNamespace(key=key, value=value, message=SimpleNamespace(value=value, partition=partition))


def _store() -> ReplayedStore:
    app = faust.App("cx-merge-tables-test", store="memory://")
    table = replayed_table(app, "scores", 4)
    store = table.data
    assert isinstance(store, ReplayedStore)
    return store


def _replay(store: ReplayedStore, *records: Any) -> None:
    store.apply_changelog_batch(list(records), to_key=lambda k: k, to_value=lambda v: v)


def test_a_late_older_version_does_not_replace_a_newer_one() -> None:
    store = _store()
    _replay(
        store,
        _record("chat|1", {"o": 10, "end_n": 3, "contn": 1}),
        _record("chat|1", {"o": 12, "end_n": 4, "contn": 1}),  # the new owner's
        _record("chat|1", {"o": 11, "end_n": 3, "contn": 2}),  # the frozen worker's, late
        _record("chat|2", {"o": 11, "end_n": 1}),
    )
    assert store.data["chat|1"] == {"o": 12, "end_n": 4, "contn": 1}
    assert store.data["chat|2"] == {"o": 11, "end_n": 1}


def test_the_same_version_again_and_tombstones_apply_in_order() -> None:
    store = _store()
    _replay(
        store,
        _record("chat|1", {"o": 12, "n": 1}),
        _record("chat|1", {"o": 12, "n": 1}, partition=2),
        _record("chat|3", {"o": 5}),
        _record("chat|3", None),
    )
    assert store.data["chat|1"] == {"o": 12, "n": 1}
    assert store._key_partition["chat|1"] == 2
    assert "chat|3" not in store.data


def test_forget_empties_the_store() -> None:
    store = _store()
    _replay(store, _record("chat|1", {"o": 1}))
    store.data["written|live"] = {"o": 2}  # a record written live, never read back
    store.forget()
    assert dict(store.data) == {}
    assert dict(store._key_partition) == {}


def test_version_is_the_offset_of_the_last_partial_or_minus_one() -> None:
    assert version({"o": 7}) == 7
    assert version({"t": {}}) == -1
    assert version(None) == -1
    assert version([1]) == -1
