import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.core import formulas as f


def test_seed_004_csat_example() -> None:
    # 60 of 100 responses satisfied → CSAT 60%
    assert f.ratio(60, 100) == pytest.approx(0.60)


def test_seed_004_nps_example() -> None:
    # 50 promoters, 27 detractors of 100 → NPS 23
    assert f.nps(50, 27, 100) == pytest.approx(23.0)


def test_empty_window_has_no_value() -> None:
    assert f.ratio(0, 0) is None
    assert f.nps(0, 0, 0) is None
    assert f.wilson_interval(0, 0) is None
    assert f.nps_interval(0, 0, 0) is None
    assert f.mean(0, 0) is None


@pytest.mark.parametrize(
    ("score", "scale", "satisfied"),
    [(5, 5, True), (4, 5, True), (3, 5, False), (1, 5, False), (10, 10, True), (9, 10, True), (8, 10, False)],
)
def test_csat_top_two_box(score: int, scale: int, satisfied: bool) -> None:
    assert f.csat_satisfied(score, scale) is satisfied


@pytest.mark.parametrize(("score", "cls"), [(10, 1), (9, 1), (8, 0), (7, 0), (6, -1), (0, -1)])
def test_nps_classes(score: int, cls: int) -> None:
    assert f.nps_class(score) == cls


@pytest.mark.parametrize(
    ("score", "scale", "agrees"),
    [(7, 7, True), (5, 7, True), (4, 7, False), (5, 5, True), (4, 5, True), (3, 5, False)],
)
def test_ces_agreement(score: int, scale: int, agrees: bool) -> None:
    assert f.ces_agrees(score, scale) is agrees


def test_wilson_known_value() -> None:
    # Reference value for 60/100 at 95 %: [0.5020, 0.6906] is the Wald-free Wilson bound
    low, high = f.wilson_interval(60, 100) or (0, 0)
    assert low == pytest.approx(0.50199, abs=1e-4)
    assert high == pytest.approx(0.69064, abs=1e-4)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_point_estimate(hits_n: tuple[int, int]) -> None:
    hits, n = hits_n
    low, high = f.wilson_interval(hits, n) or (math.nan, math.nan)
    assert 0.0 <= low <= hits / n <= high <= 1.0


@given(st.integers(1, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.integers(0, n), st.just(n))))
def test_nps_interval_contains_estimate(pdn: tuple[int, int, int]) -> None:
    promoters, detractors, n = pdn
    if promoters + detractors > n:
        return
    value = f.nps(promoters, detractors, n)
    low, high = f.nps_interval(promoters, detractors, n) or (math.nan, math.nan)
    assert value is not None
    assert -100.0 <= low <= value + 1e-9 and value - 1e-9 <= high <= 100.0


def test_nps_interval_known_value() -> None:
    low, high = f.nps_interval(50, 27, 100) or (0, 0)
    # variance of a ±100 variable: 100²·(0.77 − 0.23²) → half width 1.96·sqrt(7171/100)
    half = f.Z95 * math.sqrt(10000 * (0.77 - 0.23**2) / 100)
    assert (low, high) == pytest.approx((23 - half, 23 + half))


@pytest.mark.parametrize(("hits", "n"), [(-1, 5), (6, 5), (-3, 0)])
def test_counts_that_cannot_be_a_share_give_no_figure_and_no_crash(hits: int, n: int) -> None:
    # Seen in CI: a contained count above the ended count (state a frozen worker
    # had left behind) made the Wilson interval take a negative square root and
    # crashed the worker's snapshot timer.
    assert f.ratio(hits, n) is None
    assert f.wilson_interval(hits, n) is None
