"""The live queue's multisets against a plain list of times."""

import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.aggregate import encode_json
from stream_app.core.live_queue import LiveQueue, chunk_is_empty, chunk_times

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
    assert stored["b"] == low
    assert chunk_is_empty(stored) == (not any(low <= t < high for t in held))
    assert chunk_times(orjson.loads(encode_json(stored))) == {
        t: held.count(t) for t in sorted(set(held)) if low <= t < high
    }


def test_chunks_stored_in_earlier_forms_read_as_the_same_times() -> None:
    until_2026_12 = {"p": 1, "o": 7, "t": {"1000": 1, "2000": 3}}
    until_2026_12_06 = {"p": 1, "o": 7, "t": [1000, 2000], "m": {"2000": 3}}
    now = {"p": 1, "o": 7, "b": 0, "d": [1000, 1000], "m": {"2000": 3}}
    assert (
        chunk_times(until_2026_12) == chunk_times(until_2026_12_06) == chunk_times(now) == {1000: 1, 2000: 3}
    )
    assert [chunk_is_empty(c) for c in ({"t": []}, {"t": {}}, {"b": 0, "d": []})] == [True, True, True]


def test_a_busy_hour_s_chunk_fits_in_a_kafka_record() -> None:
    """The `all` series' open tickets of one hour are one table record (the merge stage
    writes it with each batch that changes it); Kafka refuses records over 1 MB by
    default, which stopped the merge stage for good. 250,000 distinct ms times in one
    hour (a 500,000-event bench held 68,166 and wrote 966,577 bytes as 13-digit times):
    as gaps they take 2-3 characters each."""
    hour = 1_800_000_000_000 - 1_800_000_000_000 % 3_600_000
    rng = random.Random(14)
    times = rng.sample(range(hour, hour + 3_600_000), 250_000)
    queue = LiveQueue()
    queue.apply("open", dict.fromkeys(times, 1))
    queue.apply("open", {times[0]: 2})  # one time held by three tickets
    stored = queue.chunk("open", hour, hour + 3_600_000)
    record = encode_json({"p": 3, "o": 123_456_789, **stored})
    assert len(record) < 1_000_000, len(record)
    assert chunk_times(orjson.loads(record)) == {t: 3 if t == times[0] else 1 for t in times}
