"""The live queue of one channel: what is open, waiting or late right now (SPEC §4).

Not windowed. The intake sends, per open ticket or waiting chat, facts that carry
a time (`LIVE_KINDS`: opened at, first response due at, resolution due at,
waiting since) and retracts them when the ticket or chat moves on. Here they are
kept as multisets of those times, so every figure is a count or a minimum
against the wall clock: a ticket whose target passes at 10:00 is "breaching" at
10:00 with no event at 10:00, and the figures are exact after a restart because
the multisets are rebuilt from the same (changelogged) facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate, chain
from operator import sub
from typing import Any

from sortedcontainers import SortedList

from stream_app.core.timeutil import MINUTE_MS

#: "About to breach": due within this much wall-clock time.
SOON_MS = 15 * MINUTE_MS


@dataclass(frozen=True)
class LiveFigures:
    """The live-queue gauges at one instant (counts; ages in seconds, None when nothing is open/waiting)."""

    open_tickets: int = 0
    oldest_open_ticket_seconds: float | None = None
    chats_waiting: int = 0
    oldest_waiting_chat_seconds: float | None = None
    breaching_first_response: int = 0
    breaching_resolution: int = 0
    breach_soon_first_response: int = 0
    breach_soon_resolution: int = 0

    def to_json(self) -> dict[str, Any]:
        """The snapshot's `live` object."""
        return {
            "open_tickets": self.open_tickets,
            "oldest_open_ticket_seconds": self.oldest_open_ticket_seconds,
            "chats_waiting": self.chats_waiting,
            "oldest_waiting_chat_seconds": self.oldest_waiting_chat_seconds,
            "breaching": {
                "first_response": self.breaching_first_response,
                "resolution": self.breaching_resolution,
            },
            "breach_soon": {
                "first_response": self.breach_soon_first_response,
                "resolution": self.breach_soon_resolution,
            },
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LiveFigures:
        """From a snapshot's `live` object (another worker's, read from cx.metrics)."""
        breaching, soon = raw.get("breaching") or {}, raw.get("breach_soon") or {}
        return cls(
            open_tickets=int(raw.get("open_tickets") or 0),
            oldest_open_ticket_seconds=raw.get("oldest_open_ticket_seconds"),
            chats_waiting=int(raw.get("chats_waiting") or 0),
            oldest_waiting_chat_seconds=raw.get("oldest_waiting_chat_seconds"),
            breaching_first_response=int(breaching.get("first_response") or 0),
            breaching_resolution=int(breaching.get("resolution") or 0),
            breach_soon_first_response=int(soon.get("first_response") or 0),
            breach_soon_resolution=int(soon.get("resolution") or 0),
        )


class LiveQueue:
    """Multisets of times per live kind, with counts in time ranges.

    Each kind keeps its distinct times in a `sortedcontainers.SortedList`,
    maintained as facts come and go: a read costs a binary search, not a sort of
    the backlog, and an insert or removal O(log n) rather than the O(n) move of a
    plain sorted list (18.6 µs per insert with 100,000 open tickets, 68 µs with
    500,000, per kind and series). The rare times held by more than one ticket are
    counted apart.
    """

    __slots__ = ("_keys", "_more", "times")

    def __init__(self) -> None:
        #: kind → time ms → how many open tickets / waiting chats have it.
        self.times: dict[str, dict[int, int]] = {}
        #: kind → its times with a non-zero count, sorted.
        self._keys: dict[str, SortedList] = {}
        #: kind → time → count − 1, for the times whose count is not 1.
        self._more: dict[str, dict[int, int]] = {}

    def apply(self, kind: str, deltas: Mapping[int, int]) -> None:
        counts = self.times.setdefault(kind, {})
        keys = self._keys.get(kind)
        if keys is None:
            keys = self._keys[kind] = SortedList()
        more = self._more.setdefault(kind, {})
        for at_ms, amount in deltas.items():
            old = counts.get(at_ms, 0)
            new = old + amount
            if new:
                counts[at_ms] = new
                if not old:
                    keys.add(at_ms)
            else:
                counts.pop(at_ms, None)
                if old:
                    keys.remove(at_ms)
            if new in (0, 1):
                more.pop(at_ms, None)
            else:
                more[at_ms] = new - 1
        if not counts:
            del self.times[kind], self._keys[kind], self._more[kind]

    def count(self, kind: str) -> int:
        return len(self._keys.get(kind, ())) + sum(self._more.get(kind, {}).values())

    def count_between(self, kind: str, low: int, high: int) -> int:
        """How many times t with low <= t <= high."""
        keys = self._keys.get(kind)
        if not keys or low > high:
            return 0
        found: int = keys.bisect_right(high) - keys.bisect_left(low)
        return found + sum(n for t, n in self._more[kind].items() if low <= t <= high)

    def earliest(self, kind: str) -> int | None:
        keys = self._keys.get(kind)
        return int(keys[0]) if keys else None

    def figures(self, now_ms: int) -> LiveFigures:
        def age(kind: str) -> float | None:
            first = self.earliest(kind)
            return None if first is None else max(0, now_ms - first) / 1000

        return LiveFigures(
            open_tickets=self.count("open"),
            oldest_open_ticket_seconds=age("open"),
            chats_waiting=self.count("chat_waiting"),
            oldest_waiting_chat_seconds=age("chat_waiting"),
            breaching_first_response=self.count_between("first_response_due", -(2**62), now_ms),
            breaching_resolution=self.count_between("resolution_due", -(2**62), now_ms),
            breach_soon_first_response=self.count_between("first_response_due", now_ms + 1, now_ms + SOON_MS),
            breach_soon_resolution=self.count_between("resolution_due", now_ms + 1, now_ms + SOON_MS),
        )

    def chunk(self, kind: str, low: int, high: int) -> dict[str, Any]:
        """The stored form of the times of one kind in [low, high) (one table record per
        chunk of time): `{"b": low, "d": [gaps], "m": {time: count}}`. The distinct
        times, ascending, are written as the gaps from `low` to the first and between
        each and the next; `m` holds only the counts that are not 1.

        Gaps, not the times: a 13-digit time per open ticket put the `all` series'
        record of the busiest hour of a 500,000-event bench at 966,577 bytes (68,166
        open tickets), and the next seed's over Kafka's default 1 MB record limit,
        which stopped the merge stage for good (every commit refused). Gaps take 2-4
        characters each: an hour's record stays under 1 MB up to about 450,000
        distinct times (`tests/unit/test_live_queue.py`). The merge stage rewrites
        every chunk a batch touched, so the record is also what every batch writes.
        A slice of the sorted times, not a dict built key by key (958 times: built in
        4 µs, was 113)."""
        keys = self._keys.get(kind)
        if not keys:
            return {"b": low, "d": []}
        times: list[int] = keys[keys.bisect_left(low) : keys.bisect_left(high)]
        # map(sub, ...) runs in C: 68,000 times take 3 ms (a comprehension over
        # pairwise 4.8), and orjson writes the short gaps in 0.5 ms (13-digit times 3.4)
        stored: dict[str, Any] = {"b": low, "d": list(map(sub, times, chain((low,), times)))}
        more = self._more.get(kind)
        if not more or not times:
            return stored
        counts = self.times[kind]
        if len(more) < len(times):  # the times held more than once are few (ms event times)
            odd = {t: counts[t] for t in more if low <= t < high}
        else:  # second-precision times: many are shared, look at this chunk's only
            odd = {t: counts[t] for t in times if counts[t] != 1}
        if odd:
            stored["m"] = odd
        return stored


def chunk_is_empty(stored: Mapping[str, Any]) -> bool:
    """Does a stored chunk (any of `chunk_times`' forms) hold no time?"""
    return not stored.get("d", stored.get("t"))


def chunk_times(stored: Mapping[str, Any]) -> dict[int, int]:
    """Time ms → count from a stored chunk: `LiveQueue.chunk`'s form, or those written
    before: `{"t": [times], "m": {...}}` (until 2026-12-06) and `{"t": {"<time ms>":
    count}}` (until 2026-12). Raises on anything else."""
    if "d" in stored:
        at = accumulate(map(int, stored["d"]), initial=int(stored["b"]))
        next(at)  # `b` itself, the chunk's start
        times = dict.fromkeys(at, 1)
    else:
        raw = stored["t"]
        if isinstance(raw, dict):
            return {int(t): int(n) for t, n in raw.items() if int(n)}
        times = dict.fromkeys(map(int, raw), 1)
    for t, n in stored.get("m", {}).items():
        if int(n):
            times[int(t)] = int(n)
        else:
            times.pop(int(t), None)
    return times
