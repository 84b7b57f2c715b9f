"""The scoreboard's snapshot cache: rows are rebuilt per series, only for what moved."""

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.aggregate import Aggregate
from stream_app.core.scoreboard import ChannelPartial, Scoreboard
from stream_app.core.timeutil import MINUTE_MS, parse_rfc3339_ms
from stream_app.core.windows import Timeline
from tests.unit.conftest import WINDOWS

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")
TL = Timeline(WINDOWS)
SERIES = ("chat", "email", "q:billing")


def tickets(bucket: int, n: int = 1) -> ChannelPartial:
    agg = Aggregate()
    agg.add_fact(("chat", 0, "ticket_created", 0, 0), n)
    partial = ChannelPartial()
    partial.buckets[bucket] = agg
    return partial


def without_as_of(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in row.items() if k != "as_of"} for row in rows]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("apply"), st.sampled_from(SERIES), st.integers(-90, 2)),
            st.tuples(st.just("due"), st.sampled_from(SERIES), st.integers(-30, 300)),
            st.tuples(st.just("advance"), st.just(""), st.integers(0, 150)),
            st.tuples(st.just("read"), st.just(""), st.just(0)),
        ),
        max_size=40,
    )
)
def test_cached_rows_equal_rows_built_from_scratch(steps: list[tuple[str, str, int]]) -> None:
    """Whatever was applied, slid or read before, `snapshots()` equals a build of
    every row at that instant (apart from `as_of`, which says when a row was built):
    rows refreshed for a new second (live queue, open breaches) included."""
    now = NOW
    board = Scoreboard(TL, now)
    for action, series, amount in steps:
        if action == "apply":
            board.apply(series, tickets(TL.bucket_of(now + amount * MINUTE_MS)))
        elif action == "due":  # an open ticket whose targets pass `amount` seconds from now
            partial = ChannelPartial()
            for kind in ("open", "first_response_due", "resolution_due"):
                partial.add_live(kind, now + amount * 1000, 1)
            board.apply(series, partial)
        elif action == "advance":
            now += amount * 1000
            board.advance(now)
        else:
            board.snapshots()
        assert without_as_of(board.snapshots()) == without_as_of(board.snapshots(exact=True))


def test_a_change_rebuilds_only_the_series_it_touched() -> None:
    board = Scoreboard(TL, NOW)
    for series in SERIES:
        board.apply(series, tickets(TL.bucket_of(NOW)))
    before = {(row["channel"], row["window"]): row for row in board.snapshots()}
    board.apply("chat", tickets(TL.bucket_of(NOW), 2))
    after = {(row["channel"], row["window"]): row for row in board.snapshots()}
    assert len(after) == 3 * len(WINDOWS)
    for (series, window), row in after.items():
        assert (row is before[(series, window)]) == (series != "chat")
    assert after[("chat", "15m")]["volume"] != before[("chat", "15m")]["volume"]
