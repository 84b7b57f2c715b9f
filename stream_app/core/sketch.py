"""A mergeable, retractable percentile sketch with ≤ 1% relative error.

The key mapping is ddsketch's LogarithmicMapping (the DDSketch paper's proof of
the relative-error bound lives there). Its own stores only accept positive
weights, but out-of-order ticket events can move a first-response time after
it was counted, so we keep plain signed counts per key: retracting a value is
adding −1 at its key, and merging two sketches is adding their counts.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from itertools import accumulate
from typing import Any

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
#: Key for values too small to map (durations of 0 ms); sorts below every real key.
ZERO_KEY = -(2**31)

Counts = dict[int, int]


def key_of(value: float) -> int:
    """Bucket key for a non-negative value (negatives are clamped to zero)."""
    if value < 1e-9:
        return ZERO_KEY
    return int(_MAPPING.key(value))


def value_of(key: int) -> float:
    return 0.0 if key == ZERO_KEY else float(_MAPPING.value(key))


def add(counts: Counts, value: float, weight: int = 1) -> None:
    """Add (weight > 0) or retract (weight < 0) one value; empty keys disappear."""
    key = key_of(value)
    merged = counts.get(key, 0) + weight
    if merged:
        counts[key] = merged
    else:
        counts.pop(key, None)


def merge_into(target: Counts, other: Mapping[int, int], sign: int = 1) -> None:
    for key, count in other.items():
        merged = target.get(key, 0) + sign * count
        if merged:
            target[key] = merged
        else:
            target.pop(key, None)


def total(counts: Mapping[int, int]) -> int:
    return sum(counts.values())


def quantiles(counts: Mapping[int, int], qs: Iterable[float]) -> dict[float, float | None]:
    """The nearest-rank quantile: the key holding rank ⌈q·n⌉ (1-based), per q, i.e.
    the smallest value (within the sketch's 1%) with at least a share q of the
    observations at or below it: "90% of first responses took at most p90".

    (DDSketch's own rule, rank ⌊q·(n−1)⌋, reads low on small samples: the p90 of
    10, 20, 30, 40 and 500 s was 40 s, below the mean; nearest rank gives 500 s.)
    Returns None for every q of an empty sketch.
    """
    n = total(counts)
    wanted = sorted(qs)
    if n <= 0:
        return {q: None for q in wanted}
    # Sorted int keys and their running totals, both built in C (sorting the
    # (key, count) pairs and walking them in Python was most of a snapshot's cost).
    keys = sorted(counts)
    running = list(accumulate(map(counts.__getitem__, keys)))
    last = len(keys) - 1
    result: dict[float, float | None] = {}
    for q in wanted:
        rank = max(0, math.ceil(q * n) - 1)  # 0-based: the first key whose running total passes it
        result[q] = value_of(keys[min(bisect_right(running, rank), last)])
    return result


def encode(counts: Mapping[int, int]) -> dict[int, int]:
    """The stored form: a copy, int keys kept (`orjson.OPT_NON_STR_KEYS` writes them
    as JSON's string keys without a Python loop; `decode` reads either)."""
    return dict(counts)


def decode(raw: Mapping[Any, Any]) -> Counts:
    """Counts from their stored form: JSON's string keys, or the int keys of `encode`."""
    return {int(k): int(v) for k, v in raw.items()}
