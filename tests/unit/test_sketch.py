import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core import sketch

durations = st.lists(st.integers(0, 30 * 86_400_000), min_size=1, max_size=400)


def exact_quantile(values: list[int], q: float) -> int:
    """Nearest rank: the ⌈q·n⌉-th smallest value (the first for q = 0)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def build(values: list[int]) -> sketch.Counts:
    counts: sketch.Counts = {}
    for v in values:
        sketch.add(counts, v)
    return counts


@settings(max_examples=300)
@given(durations, st.sampled_from([0.0, 0.25, 0.5, 0.9, 0.99, 1.0]))
def test_relative_error_at_most_one_percent(values: list[int], q: float) -> None:
    estimate = sketch.quantiles(build(values), [q])[q]
    truth = exact_quantile(values, q)
    assert estimate is not None
    if truth == 0:
        assert estimate == 0.0
    else:
        assert abs(estimate - truth) <= 0.01 * truth + 1e-9


@given(durations, durations)
def test_merge_equals_sketch_of_union(a: list[int], b: list[int]) -> None:
    merged = build(a)
    sketch.merge_into(merged, build(b))
    assert merged == build(a + b)


@given(durations, durations)
def test_retraction_restores_exactly(kept: list[int], retracted: list[int]) -> None:
    counts = build(kept + retracted)
    for v in retracted:
        sketch.add(counts, v, -1)
    assert counts == build(kept)


def test_empty_sketch_has_no_quantiles() -> None:
    assert sketch.quantiles({}, [0.5, 0.9]) == {0.5: None, 0.9: None}


def test_json_round_trip() -> None:
    counts = build([0, 1, 250, 99_000])
    assert sketch.decode(sketch.encode(counts)) == counts


def test_small_samples_are_not_read_low() -> None:
    """p90 of 10, 20, 30, 40, 500 s is 500 s (90% at or below it), not 40 s."""
    counts = build([10_000, 20_000, 30_000, 40_000, 500_000])
    found = sketch.quantiles(counts, [0.5, 0.9])
    assert found[0.9] is not None and abs(found[0.9] - 500_000) <= 5_000
    assert found[0.5] is not None and abs(found[0.5] - 30_000) <= 300
    pair = sketch.quantiles(build([30_000, 90_000]), [0.9])[0.9]
    assert pair is not None and abs(pair - 90_000) <= 900  # never below the mean of two


@settings(max_examples=300)
@given(durations, st.lists(st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0]), min_size=1, max_size=4))
def test_quantile_is_the_nearest_rank_key(values: list[int], qs: list[float]) -> None:
    """Exactly the key holding rank ⌈q·n⌉ of the keyed values, for several q at once."""
    keyed = sorted(sketch.key_of(v) for v in values)
    found = sketch.quantiles(build(values), qs)
    for q in qs:
        assert found[q] == sketch.value_of(keyed[max(0, math.ceil(q * len(keyed)) - 1)])
