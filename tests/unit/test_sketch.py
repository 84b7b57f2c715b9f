from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core import sketch

durations = st.lists(st.integers(0, 30 * 86_400_000), min_size=1, max_size=400)


def exact_quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


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
