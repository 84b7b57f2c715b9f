"""The live queue's multisets against a plain list of times."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.aggregate import encode_json
from stream_app.core.live_queue import LiveQueue, chunk_times

TIMES = st.integers(0, 40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TIMES, st.sampled_from([1, 1, 1, -1, 2])), max_size=60), TIMES, TIMES)
def test_counts_equal_a_plain_multiset(changes: list[tuple[int, int]], low: int, high: int) -> None:
    queue = LiveQueue()
    held: list[int] = []
    for at, amount in changes:
        if amount < 0 and at not in held:  # retractions only of what was added, as the intake does
            continue
        queue.apply("open", {at: amount})
        if amount > 0:
            held.extend([at] * amount)
        else:
            held.remove(at)
    assert queue.count("open") == len(held)
    assert queue.count_between("open", low, high) == sum(1 for t in held if low <= t <= high)
    assert queue.earliest("open") == (min(held) if held else None)
    assert (queue.times == {}) == (not held)
    stored = queue.chunk("open", low, high)
    assert stored["t"] == sorted(t for t in set(held) if low <= t < high)
    assert chunk_times(orjson.loads(encode_json(stored))) == {
        t: held.count(t) for t in sorted(set(held)) if low <= t < high
    }


def test_a_chunk_stored_before_2026_12_reads_as_the_same_times() -> None:
    old = {"p": 1, "o": 7, "t": {"1000": 1, "2000": 3}}
    new = {"p": 1, "o": 7, "t": [1000, 2000], "m": {"2000": 3}}
    assert chunk_times(old) == chunk_times(new) == {1000: 1, 2000: 3}
