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


class Aggregate:
    """Counters and sketches for one channel over one span of event time."""

    __slots__ = ("counts", "sketches")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.sketches: dict[str, sketch.Counts] = {}

    def add_fact(self, fact: Fact, sign: int) -> None:
        _, _, kind, value, flag = fact
        if kind == "csat":
            self._bump("csat_n", sign)
            if csat_satisfied(value, flag):
                self._bump("csat_ok", sign)
            self._bump("surveys", sign)
        elif kind == "nps":
            self._bump("nps_n", sign)
            cls = nps_class(value)
            if cls:
                self._bump("nps_pro" if cls > 0 else "nps_det", sign)
            self._bump("surveys", sign)
        elif kind == "ces":
            self._bump("ces_n", sign)
            # the mean is on the 7-point scale: half points, 5-point answers rescaled
            half = ces_half_points(value, flag)
            self._bump("ces_h", sign * half)
            self._bump("ces_hsq", sign * half * half)
            if ces_agrees(value, flag):
                self._bump("ces_ok", sign)
            self._bump("surveys", sign)
        elif kind in _TIMED:
            durations, sla = _TIMED[kind]
            self._duration(durations, value, sign)
            self._bump(f"{sla}_n", sign)
            self._bump(f"{sla}_ok", sign * flag)
        elif kind == "first_response_missed":  # closed unanswered after its target
            self._bump("slafr_n", sign)
        elif kind == "first_response_business":
            self._duration("frtb", value, sign)
        elif kind == "resolution_business":
            self._duration("resb", value, sign)
        elif kind == "chat_wait":
            self._duration("wait", value, sign)
        elif kind == "chat_ended":  # flag: 0 answered, 1 abandoned, 2 contained (self-service)
            self._bump("end_n", sign)
            if flag == 1:
                self._bump("aband", sign)
            elif flag == 2:
                self._bump("contn", sign)
        elif kind == "service_level":  # flag: answered within the threshold
            self._bump("svl_n", sign)
            self._bump("svl_ok", sign * flag)
        elif kind == "survey_offered":  # flag: answered (so far)
            self._bump("offer_n", sign)
            self._bump("offer_resp", sign * flag)
        elif kind == "resolved_contact":
            self._bump("fcr_n", sign)
            self._bump("fcr_ok", sign * flag)
        elif kind == "ticket_created":
            self._bump("tickets", sign)
        elif kind == "chat_started":
            self._bump("chats", sign)
        else:  # pragma: no cover - facts are produced by our own state machines
            raise ValueError(f"unknown fact kind {kind!r}")

    def _bump(self, name: str, amount: int) -> None:
        if not amount:
            return
        merged = self.counts.get(name, 0) + amount
        if merged:
            self.counts[name] = merged
        else:
            del self.counts[name]

    def _duration(self, name: str, ms: int, sign: int) -> None:
        self._bump(f"{name}_n", sign)
        self._bump(f"{name}_sum", sign * ms)
        # Squares in whole seconds: enough for a variance, and bounded for JSON integers.
        self._bump(f"{name}_sq", sign * round(ms / 1000) ** 2)
        counts = self.sketches.setdefault(name, {})
        sketch.add(counts, ms, sign)
        if not counts:
            del self.sketches[name]

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
