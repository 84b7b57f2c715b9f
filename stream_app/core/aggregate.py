"""Additive aggregates: the one shape every bucket, window and partial shares.

An aggregate is a set of integer counters plus three retractable sketches.
Everything is integer (durations in ms), so adding then subtracting the same
contribution restores the previous value exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from stream_app.core import sketch
from stream_app.core.formulas import ces_agrees, ces_half_points, csat_satisfied, nps_class

#: Counter names (kept short: they travel in every partial and changelog record).
COUNTERS = (
    "csat_n", "csat_ok",
    "nps_n", "nps_pro", "nps_det",
    "ces_n", "ces_ok", "ces_h",
    "fcr_n", "fcr_ok",
    "end_n", "aband", "contn",
    "slafr_n", "slafr_ok", "slares_n", "slares_ok", "slacfr_n", "slacfr_ok",
    "tickets", "chats", "surveys",
    "frt_sum", "res_sum", "wait_sum", "cfrt_sum",
    "ces_hsq", "frt_sq", "res_sq", "wait_sq", "cfrt_sq",
    "frt_n", "res_n", "wait_n", "cfrt_n",
    "frtb_n", "frtb_sum", "frtb_sq", "resb_n", "resb_sum", "resb_sq",
    "svl_n", "svl_ok", "offer_n", "offer_resp",
)  # fmt: skip
SKETCHES = ("frt", "res", "wait", "cfrt", "frtb", "resb")
#: Live-queue fact kinds: not windowed, kept as multisets of times by the merge stage.
LIVE_KINDS = frozenset({"open", "first_response_due", "resolution_due", "chat_waiting"})

#: A fact is one contribution of one ticket/chat/survey to one bucket:
#: (channel, event time ms, kind, value, flag). Kinds:
#:   ticket_created, chat_started                       value/flag unused (0)
#:   csat | nps | ces                                   value=score, flag=scale
#:   first_response (ticket) | chat_first_response | resolution   value=calendar ms,
#:                                                      flag=1 if within SLA (judged on the SLA clock)
#:   first_response_missed                              a ticket closed unanswered after its
#:                                                      first-response target (time = the target)
#:   first_response_business | resolution_business      value=ms on the SLA clock (business
#:                                                      hours; resolution without pending time)
#:   chat_wait                                          value=ms
#:   chat_ended                                         flag=0 answered, 1 abandoned, 2 contained
#:   resolved_contact                                   flag=1 if first-contact
#:   open | first_response_due | resolution_due | chat_waiting   live queue (LIVE_KINDS),
#:                                                      not windowed: time = opened / due / waiting since
Fact = tuple[str, int, str, int, int]
#: Timed fact kind → (its duration counters and sketch, its SLA counters). A chat's
#: first response (seconds) has its own: it is never mixed with a ticket's (hours).
_TIMED = {
    "first_response": ("frt", "slafr"),
    "chat_first_response": ("cfrt", "slacfr"),
    "resolution": ("res", "slares"),
}
#: Duration-only fact kinds → their counters and sketch.
_DURATION_ONLY = {"first_response_business": "frtb", "resolution_business": "resb", "chat_wait": "wait"}
#: What one fact adds (for sign +1): counter increments (name, amount; none zero), and
#: the sketch it adds a value to with the value's sketch key (None, 0: none).
Effect = tuple[tuple[tuple[str, int], ...], str | None, int]
_PLAIN: dict[str, Effect] = {
    "ticket_created": ((("tickets", 1),), None, 0),
    "chat_started": ((("chats", 1),), None, 0),
    "first_response_missed": ((("slafr_n", 1),), None, 0),  # closed unanswered after its target
}


def _duration(name: str, ms: int) -> list[tuple[str, int]]:
    # Squares in whole seconds: enough for a variance, and bounded for JSON integers.
    return [(f"{name}_n", 1), (f"{name}_sum", ms), (f"{name}_sq", round(ms / 1000) ** 2)]


def effect_of(fact: Fact) -> Effect:
    """What a fact adds to an aggregate; ValueError for a kind no state machine makes."""
    _, _, kind, value, flag = fact
    plain = _PLAIN.get(kind)
    if plain is not None:
        return plain
    bumps: list[tuple[str, int]]
    if kind in _TIMED:
        durations, sla = _TIMED[kind]
        bumps = _duration(durations, value)
        bumps.append((f"{sla}_n", 1))
        if flag:  # within the SLA (judged on the SLA clock)
            bumps.append((f"{sla}_ok", flag))
        return tuple(b for b in bumps if b[1]), durations, sketch.key_of(value)
    if kind in _DURATION_ONLY:
        name = _DURATION_ONLY[kind]
        return tuple(b for b in _duration(name, value) if b[1]), name, sketch.key_of(value)
    if kind == "csat":
        bumps = [("csat_n", 1), ("surveys", 1)]
        if csat_satisfied(value, flag):
            bumps.append(("csat_ok", 1))
    elif kind == "nps":
        bumps = [("nps_n", 1), ("surveys", 1)]
        cls = nps_class(value)
        if cls:
            bumps.append(("nps_pro" if cls > 0 else "nps_det", 1))
    elif kind == "ces":
        # the mean is on the 7-point scale: half points, 5-point answers rescaled
        half = ces_half_points(value, flag)
        bumps = [("ces_n", 1), ("ces_h", half), ("ces_hsq", half * half), ("surveys", 1)]
        if ces_agrees(value, flag):
            bumps.append(("ces_ok", 1))
    elif kind == "chat_ended":  # flag: 0 answered, 1 abandoned, 2 contained (self-service)
        bumps = [("end_n", 1)]
        if flag == 1:
            bumps.append(("aband", 1))
        elif flag == 2:
            bumps.append(("contn", 1))
    elif kind in _FLAGGED:  # flag: answered within the threshold / survey answered / first contact
        total, hits = _FLAGGED[kind]
        bumps = [(total, 1)]
        if flag:
            bumps.append((hits, flag))
    else:
        raise ValueError(f"unknown fact kind {kind!r}")
    return tuple((name, amount) for name, amount in bumps if amount), None, 0


_FLAGGED = {
    "service_level": ("svl_n", "svl_ok"),
    "survey_offered": ("offer_n", "offer_resp"),
    "resolved_contact": ("fcr_n", "fcr_ok"),
}


class Aggregate:
    """Counters and sketches for one channel over one span of event time."""

    __slots__ = ("counts", "sketches")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.sketches: dict[str, sketch.Counts] = {}

    def add_fact(self, fact: Fact, sign: int) -> None:
        """Add (sign 1) or retract (sign -1) one fact."""
        self.add_effect(effect_of(fact), sign)

    def add_effect(self, effect: Effect, sign: int) -> None:
        """Add `sign` × what one fact adds (`effect_of`): a fact counted in several
        series (its channel and its queue) is looked at once, not once per series."""
        bumps, timed, key = effect
        counts = self.counts
        for name, amount in bumps:
            merged = counts.get(name, 0) + sign * amount
            if merged:
                counts[name] = merged
            else:
                counts.pop(name, None)
        if timed is not None:
            add_count(self.sketches, timed, key, sign)

    def _bump(self, name: str, amount: int) -> None:
        if not amount:
            return
        merged = self.counts.get(name, 0) + amount
        if merged:
            self.counts[name] = merged
        else:
            del self.counts[name]

    def merge(self, other: Aggregate, sign: int = 1) -> None:
        """Add `sign` × `other` (partials into windows, channels into rollups: the
        hottest loop of both stages, so an empty counter set or sketch is copied)."""
        counts = self.counts
        if not counts:
            self.counts = {name: sign * amount for name, amount in other.counts.items() if amount}
        else:
            for name, amount in other.counts.items():
                merged = counts.get(name, 0) + sign * amount
                if merged:
                    counts[name] = merged
                else:
                    counts.pop(name, None)
        sketches = self.sketches
        for name, theirs in other.sketches.items():
            target = sketches.get(name)
            if target is None:
                copied = {key: sign * n for key, n in theirs.items() if n}
                if copied:
                    sketches[name] = copied
                continue
            sketch.merge_into(target, theirs, sign)
            if not target:
                del sketches[name]

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)

    def is_empty(self) -> bool:
        return not self.counts and not self.sketches

    def with_counts(self, extra: Mapping[str, int]) -> Aggregate:
        """A view with some counters added (sketches shared with this one: read only)."""
        if not any(extra.values()):
            return self
        view = Aggregate()
        view.counts = dict(self.counts)
        for name, amount in extra.items():
            view._bump(name, amount)
        view.sketches = self.sketches
        return view

    def copy(self) -> Aggregate:
        clone = Aggregate()
        clone.merge(self)
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Aggregate):
            return NotImplemented
        return self.counts == other.counts and self.sketches == other.sketches

    def __repr__(self) -> str:
        return f"Aggregate({self.counts!r}, {self.sketches!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "c": dict(self.counts),
            "s": {name: sketch.encode(c) for name, c in self.sketches.items()},
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Aggregate:
        agg = cls()
        agg.counts = {str(k): int(v) for k, v in raw.get("c", {}).items() if v}
        agg.sketches = {str(k): sketch.decode(v) for k, v in raw.get("s", {}).items() if v}
        return agg


def add_count(table: dict[str, dict[int, int]], name: str, key: int, amount: int) -> None:
    """Add a signed count at `table[name][key]` (a sketch key's count, a live-queue
    time's): a count that reaches 0 is removed, and so is a name left with none."""
    counts = table.get(name)
    if counts is None:
        counts = table[name] = {}
    merged = counts.get(key, 0) + amount
    if merged:
        counts[key] = merged
    else:
        counts.pop(key, None)
        if not counts:
            del table[name]


def encode_json(value: Any) -> bytes:
    """JSON bytes of a stored form whose dicts may have int keys (buckets, times,
    sketch keys), written as JSON's string keys."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def fact_delta(old: Iterable[Fact], new: Iterable[Fact]) -> list[tuple[Fact, int]]:
    """The signed multiset difference new − old (identical facts cancel)."""
    balance: dict[Fact, int] = {}
    for fact in old:
        balance[fact] = balance.get(fact, 0) - 1
    for fact in new:
        balance[fact] = balance.get(fact, 0) + 1
    return [(fact, sign) for fact, sign in balance.items() if sign]
