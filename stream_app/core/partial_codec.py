"""The partials' wire form: what stage 1 sends and stage 2 reads (JSON).

    {"b": {"<bucket ms>": {"c": {"<counter>": n}, "s": {"<sketch>": {"<key>": n}}}},
     "l": {"<live kind>": {"<time ms>": n}}}

JSON object keys are strings; in memory buckets, times and sketch keys are ints.
Writing uses orjson's OPT_NON_STR_KEYS and reading a msgspec decoder typed with int
keys, so neither side converts keys in a Python loop (stage 2 decodes every partial
of every series: with 10 queues that loop was ~5% of the worker's time). Counts are
never zero: the writer drops them, and `decode` keeps what it is given.
"""

from __future__ import annotations

from typing import TypedDict

import msgspec

from stream_app.core.aggregate import LIVE_KINDS, Aggregate, encode_json
from stream_app.core.scoreboard import ChannelPartial


class _AggregateForm(TypedDict, total=False):
    c: dict[str, int]
    s: dict[str, dict[int, int]]


class _PartialForm(TypedDict, total=False):
    b: dict[int, _AggregateForm]
    l: dict[str, dict[int, int]]  # noqa: E741 - the wire name


_DECODER = msgspec.json.Decoder(_PartialForm)


def encode_partial(partial: ChannelPartial) -> bytes:
    """A partial as a record value."""
    return encode_json(partial.to_json())


def decode_partial(value: bytes) -> ChannelPartial:
    """A record value as a partial; msgspec.ValidationError / DecodeError for a value
    that is not one. Live kinds this version does not know are left out."""
    form = _DECODER.decode(value)
    partial = ChannelPartial()
    for bucket, raw in form.get("b", {}).items():
        agg = Aggregate()
        agg.counts = raw.get("c", {})
        agg.sketches = {name: counts for name, counts in raw.get("s", {}).items() if counts}
        partial.buckets[bucket] = agg
    partial.live = {
        kind: counts for kind, counts in form.get("l", {}).items() if counts and kind in LIVE_KINDS
    }
    return partial
