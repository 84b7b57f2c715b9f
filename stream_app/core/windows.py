"""Event-time buckets and the rolling windows that merge them.

We do our own windowing instead of Faust's windowed tables: those close
windows on wall-clock time with no grace and never expire windows restored
from the changelog. Here a bucket is an `Aggregate` for one channel and one
bucket span of event time; a window is the running sum of the buckets inside
it, kept incrementally (add a delta when it lands inside, subtract a bucket
when the window's lower edge passes it), so reading a 24 h window costs the
same as reading a 15 m one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from stream_app.core.aggregate import Aggregate
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS, parse_duration_ms

TODAY = "today"
#: A calendar day can last 25 h (DST fall-back); `today` must fit in retention.
LONGEST_DAY_MS = 25 * HOUR_MS
#: Upper edge of a window that ends now: it also holds events a little ahead of the clock.
FOREVER = 2**63


@dataclass(frozen=True)
class WindowSpec:
    name: str
    length_ms: int  # 0 for `today`

    @classmethod
    def parse(cls, name: str, bucket_ms: int) -> WindowSpec:
        if name == TODAY:
            return cls(name, 0)
        length = parse_duration_ms(name)
        if length < bucket_ms or length % bucket_ms:
            raise ValueError(f"window {name!r} must be a whole number of buckets")
        return cls(name, length)


@dataclass(frozen=True)
class Timeline:
    """Bucketing and retention rules shared by every channel."""

    windows: tuple[WindowSpec, ...]
    bucket_ms: int = MINUTE_MS
    grace_ms: int = 10 * MINUTE_MS
    future_ms: int = 5 * MINUTE_MS
    timezone: str = "UTC"

    @cached_property
    def retention_ms(self) -> int:
        """Largest window + grace: how long a bucket (and a late event) is accepted."""
        longest = max(LONGEST_DAY_MS if w.name == TODAY else w.length_ms for w in self.windows)
        return longest + self.grace_ms

    def bucket_of(self, at_ms: int) -> int:
        return at_ms - at_ms % self.bucket_ms

    def oldest_bucket(self, now_ms: int) -> int:
        """Buckets starting before this are dropped; events before it are too late."""
        return self.bucket_of(now_ms - self.retention_ms)

    def lateness(self, at_ms: int, now_ms: int) -> str | None:
        """Dead-letter reason for an event time, or None when it is accepted."""
        if at_ms > now_ms + self.future_ms:
            return "from_future"
        if at_ms < self.oldest_bucket(now_ms):
            return "too_late"
        return None

    def holds_previous(self, window: WindowSpec) -> bool:
        """Is the window of the same length before `window` still inside retention?"""
        return window.name != TODAY and 2 * window.length_ms <= self.retention_ms

    def lower_edge(self, window: WindowSpec, now_ms: int) -> int:
        """First bucket inside the window: the W/bucket newest buckets, or since midnight."""
        if window.name == TODAY:
            zone = ZoneInfo(self.timezone)
            local = datetime.fromtimestamp(now_ms / 1000, tz=zone)
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            return self.bucket_of(int(midnight.timestamp() * 1000))
        return self.bucket_of(now_ms) - window.length_ms + self.bucket_ms


class ChannelWindows:
    """All buckets of one channel plus the running aggregate of each window.

    Besides each window it keeps the window of the same length just before it
    (`previous`, for trend arrows) wherever retention still holds that one. With
    `names`, only those of the timeline's windows are kept (a series no alert rule
    watches needs only the reported ones); buckets and retention are the timeline's.
    """

    def __init__(self, timeline: Timeline, now_ms: int, names: Collection[str] | None = None) -> None:
        self.timeline = timeline
        self.specs = (
            timeline.windows if names is None else tuple(w for w in timeline.windows if w.name in names)
        )
        self.buckets: dict[int, Aggregate] = {}
        self.windows: dict[str, Aggregate] = {w.name: Aggregate() for w in self.specs}
        self.previous: dict[str, Aggregate] = {
            w.name: Aggregate() for w in self.specs if timeline.holds_previous(w)
        }
        self.spans = self._spans(now_ms)
        self.now_ms = now_ms

    def _spans(self, now_ms: int) -> dict[tuple[str, bool], tuple[int, int]]:
        """[first bucket, end) of every tracked range; key (window, is the previous one)."""
        spans = {}
        for spec in self.specs:
            lower = self.timeline.lower_edge(spec, now_ms)
            spans[(spec.name, False)] = (lower, FOREVER)
            if spec.name in self.previous:
                spans[(spec.name, True)] = (lower - spec.length_ms, lower)
        return spans

    def _range(self, key: tuple[str, bool]) -> Aggregate:
        return self.previous[key[0]] if key[1] else self.windows[key[0]]

    def apply(self, bucket: int, delta: Aggregate) -> bool:
        """Add a delta to a bucket; False (ignored) when the bucket is past retention."""
        if bucket < self.timeline.oldest_bucket(self.now_ms):
            return False
        target = self.buckets.get(bucket)
        if target is None:
            target = self.buckets[bucket] = Aggregate()
        target.merge(delta)
        if target.is_empty():
            del self.buckets[bucket]
        for key, (low, high) in self.spans.items():
            if low <= bucket < high:
                self._range(key).merge(delta)
        return True

    def apply_all(self, deltas: Mapping[int, Aggregate]) -> list[int]:
        """`apply` for a batch of buckets; returns those inside retention (changed).
        The deltas of buckets that fall in the same ranges (windows and previous
        windows) are summed first, so each range takes one merge per group rather
        than one per bucket (a merge-stage batch holds a few buckets per series)."""
        oldest = self.timeline.oldest_bucket(self.now_ms)
        buckets, spans = self.buckets, self.spans.items()
        groups: dict[tuple[tuple[str, bool], ...], list[Aggregate]] = {}
        changed = []
        for bucket, delta in deltas.items():
            if bucket < oldest:
                continue
            target = buckets.get(bucket)
            if target is None:
                target = buckets[bucket] = Aggregate()
            target.merge(delta)
            if target.is_empty():
                del buckets[bucket]
            inside = tuple(key for key, (low, high) in spans if low <= bucket < high)
            groups.setdefault(inside, []).append(delta)
            changed.append(bucket)
        for inside, group in groups.items():
            if not inside:
                continue
            total = group[0]
            if len(group) > 1:
                total = total.copy()
                for delta in group[1:]:
                    total.merge(delta)
            for key in inside:
                self._range(key).merge(total)
        return changed

    def advance(self, now_ms: int) -> list[int]:
        """Move the windows to `now_ms`; returns the buckets dropped by retention."""
        self.now_ms = now_ms
        spans = self._spans(now_ms)
        for key, (low, high) in spans.items():
            old_low, old_high = self.spans[key]
            if (low, high) == (old_low, old_high):
                continue
            target = self._range(key)
            for bucket, agg in self.buckets.items():
                sign = (low <= bucket < high) - (old_low <= bucket < old_high)
                if sign:
                    target.merge(agg, sign)
        self.spans = spans
        oldest = self.timeline.oldest_bucket(now_ms)
        dropped = [b for b in self.buckets if b < oldest]
        for bucket in dropped:
            del self.buckets[bucket]
        return dropped

    def window(self, name: str) -> Aggregate:
        return self.windows[name]

    def previous_window(self, name: str) -> Aggregate | None:
        """The same-length window just before `name`, or None where retention does not hold it."""
        return self.previous.get(name)
