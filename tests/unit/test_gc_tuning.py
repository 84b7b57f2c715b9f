"""The worker's collector settings (`stream_app/gc_tuning.py`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stream_app import gc_tuning


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_freezes_start_up_objects_and_keeps_collecting_cycles(restored: None) -> None:
    before = gc.get_threshold()
    gc_tuning.tune()
    assert gc.get_threshold() == (gc_tuning.GEN0_THRESHOLD, before[1], before[2])
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle, freed only by the collector
    del a, b
    assert gc.collect() >= 2
