from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.aggregate import Aggregate
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS, parse_rfc3339_ms
from stream_app.core.windows import ChannelWindows, Timeline
from tests.unit.conftest import WINDOWS

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")
TL = Timeline(WINDOWS)


def one_ticket() -> Aggregate:
    agg = Aggregate()
    agg.add_fact(("chat", 0, "ticket_created", 0, 0), 1)
    return agg


def test_retention_is_longest_day_plus_grace() -> None:
    assert TL.retention_ms == 25 * HOUR_MS + 10 * MINUTE_MS


def test_lateness_classification() -> None:
    assert TL.lateness(NOW, NOW) is None
    assert TL.lateness(NOW + 5 * MINUTE_MS, NOW) is None
    assert TL.lateness(NOW + 5 * MINUTE_MS + 1, NOW) == "from_future"
    assert TL.lateness(NOW - TL.retention_ms + MINUTE_MS, NOW) is None
    assert TL.lateness(NOW - TL.retention_ms - MINUTE_MS, NOW) == "too_late"


def test_rolling_windows_hold_the_newest_buckets() -> None:
    windows = ChannelWindows(TL, NOW)
    for minutes_ago in (0, 14, 15, 59, 60, 23 * 60):
        windows.apply(TL.bucket_of(NOW - minutes_ago * MINUTE_MS), one_ticket())
    assert windows.window("15m").get("tickets") == 2  # 0 and 14 minutes ago
    assert windows.window("1h").get("tickets") == 4
    assert windows.window("24h").get("tickets") == 6
    assert windows.window("today").get("tickets") == 5  # 23 h ago was yesterday (UTC)


def test_advance_slides_windows_and_drops_old_buckets() -> None:
    windows = ChannelWindows(TL, NOW)
    windows.apply(TL.bucket_of(NOW), one_ticket())
    windows.advance(NOW + 15 * MINUTE_MS)
    assert windows.window("15m").is_empty()
    assert windows.window("1h").get("tickets") == 1
    windows.advance(NOW + 16 * HOUR_MS)  # past midnight UTC
    assert windows.window("today").is_empty()
    assert windows.window("24h").get("tickets") == 1
    dropped = windows.advance(NOW + 26 * HOUR_MS)
    assert dropped == [TL.bucket_of(NOW)]
    assert windows.window("24h").is_empty()
    assert not windows.buckets


def test_today_follows_the_configured_time_zone() -> None:
    tokyo = Timeline(WINDOWS, timezone="Asia/Tokyo")  # 09:15 UTC is 18:15 in Tokyo
    windows = ChannelWindows(tokyo, NOW)
    windows.apply(tokyo.bucket_of(NOW - 10 * HOUR_MS), one_ticket())  # 08:15 Tokyo, same day
    windows.apply(tokyo.bucket_of(NOW - 19 * HOUR_MS), one_ticket())  # 23:15 Tokyo, day before
    assert windows.window("today").get("tickets") == 1


def test_late_delta_outside_retention_is_ignored() -> None:
    windows = ChannelWindows(TL, NOW)
    assert windows.apply(TL.bucket_of(NOW - 30 * HOUR_MS), one_ticket()) is False
    assert windows.window("24h").is_empty()


def test_previous_window_is_the_same_length_just_before() -> None:
    windows = ChannelWindows(TL, NOW)
    for minutes_ago in (0, 14, 15, 29, 30, 59, 60, 119, 120):
        windows.apply(TL.bucket_of(NOW - minutes_ago * MINUTE_MS), one_ticket())
    assert windows.window("15m").get("tickets") == 2
    assert windows.previous["15m"].get("tickets") == 2  # 15 and 29 minutes ago
    assert windows.previous["1h"].get("tickets") == 2  # 60 and 119 minutes ago
    # 2 × 24 h and yesterday are beyond retention: no trend rather than a wrong one.
    assert windows.previous_window("24h") is None
    assert windows.previous_window("today") is None
    windows.advance(NOW + 15 * MINUTE_MS)
    assert windows.window("15m").is_empty()
    assert windows.previous["15m"].get("tickets") == 2  # 0 and 14 minutes before NOW


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("apply"), st.integers(-26 * 60, 5)),
            st.tuples(st.just("advance"), st.integers(0, 3 * 60)),
        ),
        max_size=60,
    )
)
def test_incremental_ranges_equal_a_sum_over_the_buckets(steps: list[tuple[str, int]]) -> None:
    """Sliding by add/subtract must give what summing the held buckets from scratch gives."""
    now = NOW
    windows = ChannelWindows(TL, now)
    for action, minutes in steps:
        if action == "apply":
            windows.apply(TL.bucket_of(now + minutes * MINUTE_MS), one_ticket())
        else:
            now += minutes * MINUTE_MS
            windows.advance(now)
    for (name, is_previous), (low, high) in windows.spans.items():
        expected = sum(agg.get("tickets") for b, agg in windows.buckets.items() if low <= b < high)
        held = windows.previous[name] if is_previous else windows.window(name)
        assert held.get("tickets") == expected, (name, is_previous)


def _delta(tickets: int, frt_ms: int) -> Aggregate:
    agg = Aggregate()
    agg.add_fact(("c", 0, "ticket_created", 0, 0), tickets)
    agg.add_fact(("c", 0, "first_response", frt_ms, 1), 1)
    return agg


@settings(max_examples=80, deadline=None)
@given(
    batches=st.lists(
        st.tuples(
            st.integers(0, 3 * 60),  # minutes the clock moves before the batch
            st.dictionaries(
                st.integers(-26 * 60, 5),
                st.tuples(st.sampled_from([1, 2, -1]), st.integers(0, 10**7)),
                max_size=8,
            ),
        ),
        max_size=12,
    )
)
def test_a_batch_applied_at_once_equals_its_buckets_applied_one_by_one(
    batches: list[tuple[int, dict[int, tuple[int, int]]]],
) -> None:
    """`apply_all` sums the deltas of buckets in the same ranges before merging them."""
    now = NOW
    one_by_one, at_once = ChannelWindows(TL, now), ChannelWindows(TL, now)
    for moved, deltas in batches:
        now += moved * MINUTE_MS
        one_by_one.advance(now)
        at_once.advance(now)
        batch = {TL.bucket_of(now + m * MINUTE_MS): _delta(*d) for m, d in deltas.items()}
        expected = [b for b, agg in batch.items() if one_by_one.apply(b, agg)]
        assert at_once.apply_all(batch) == expected
    assert at_once.buckets == one_by_one.buckets
    assert at_once.windows == one_by_one.windows
    assert at_once.previous == one_by_one.previous
