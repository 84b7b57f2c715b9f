"""The partials' wire form (core/partial_codec.py): what stage 1 writes, stage 2 reads
back unchanged, as JSON with string keys (the form earlier versions wrote)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.aggregate import LIVE_KINDS, Aggregate
from stream_app.core.partial_codec import decode_partial, encode_partial
from stream_app.core.scoreboard import ChannelPartial

NONZERO = st.integers(-1000, 1000).filter(bool)
COUNTS = st.dictionaries(st.sampled_from(["tickets", "csat_n", "frt_sum"]), NONZERO, max_size=3)
SKETCH = st.dictionaries(st.integers(-5000, 5000), NONZERO, min_size=1, max_size=5)
TIMES = st.dictionaries(st.integers(0, 2**53), NONZERO, min_size=1, max_size=5)


@st.composite
def partials(draw: st.DrawFn) -> ChannelPartial:
    partial = ChannelPartial()
    for bucket in draw(st.lists(st.integers(0, 2**45), max_size=3, unique=True)):
        agg = Aggregate()
        agg.counts = draw(COUNTS)
        agg.sketches = draw(st.dictionaries(st.sampled_from(["frt", "res"]), SKETCH, max_size=2))
        if not agg.is_empty():
            partial.buckets[bucket] = agg
    partial.live = draw(st.dictionaries(st.sampled_from(sorted(LIVE_KINDS)), TIMES, max_size=3))
    return partial


@given(partials())
def test_a_partial_reads_back_as_it_was_written(partial: ChannelPartial) -> None:
    again = decode_partial(encode_partial(partial))
    assert again.buckets == partial.buckets
    assert again.live == partial.live


def test_the_wire_form_is_json_with_string_keys_as_before() -> None:
    partial = ChannelPartial()
    agg = Aggregate()
    agg.counts = {"tickets": 2}
    agg.sketches = {"frt": {-3: 1, 250: 2}}
    partial.buckets[1_800_000_000_000] = agg
    partial.live = {"open": {1_800_000_060_000: 1}}
    written = {
        "b": {"1800000000000": {"c": {"tickets": 2}, "s": {"frt": {"-3": 1, "250": 2}}}},
        "l": {"open": {"1800000060000": 1}},
    }
    assert orjson.loads(encode_partial(partial)) == written
    # a record written by an earlier version (string keys from a Python loop) reads the same
    again = decode_partial(orjson.dumps(written))
    assert again.buckets == partial.buckets and again.live == partial.live


def test_unknown_live_kinds_are_left_out_and_garbage_is_refused() -> None:
    assert decode_partial(b'{"b": {}, "l": {"from_a_newer_version": {"1": 1}}}').live == {}
    with pytest.raises(ValueError):  # msgspec's errors are ValueErrors
        decode_partial(b'{"b": {"not a bucket": {}}}')
