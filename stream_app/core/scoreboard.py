"""Per-channel scores: partial aggregates in, window snapshots out.

Stage one (per input partition) turns fact deltas into `Partials`, one per
channel and per queue (a fact with a queue label is counted in both) plus the
`all` rollup; stage two (per series, one owner) folds them into a `Scoreboard`. The
reference computation in tests uses the very same two classes without any broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream_app.core import sketch
from stream_app.core.agents import is_agent
from stream_app.core.aggregate import LIVE_KINDS, Aggregate, Fact, add_count, effect_of
from stream_app.core.live_queue import LiveFigures, LiveQueue
from stream_app.core.queues import PREFIX, is_queue, split
from stream_app.core.rules import Rule
from stream_app.core.snapshot import build_snapshot
from stream_app.core.timeutil import format_ms
from stream_app.core.windows import ChannelWindows, Timeline

ALL = "all"


class ChannelPartial:
    """Summed deltas for one channel since the last flush: windowed buckets, and
    the live queue's multisets of times (kind → time ms → count delta)."""

    __slots__ = ("buckets", "live")

    def __init__(self) -> None:
        self.buckets: dict[int, Aggregate] = {}
        self.live: dict[str, dict[int, int]] = {}

    def add_live(self, kind: str, at_ms: int, amount: int) -> None:
        """Add one time's count (stage 1's per-fact path; `merge_live` adds a dict of them)."""
        add_count(self.live, kind, at_ms, amount)

    def merge_live(self, kind: str, deltas: dict[int, int]) -> None:
        """Add live-queue deltas (time ms → count) of one kind."""
        counts = self.live.get(kind)
        if counts is None:
            if deltas:
                self.live[kind] = dict(deltas)
            return
        sketch.merge_into(counts, deltas)  # signed counts per int key, as a sketch's
        if not counts:
            del self.live[kind]

    def to_json(self) -> dict[str, Any]:
        """The JSON form, int keys kept (`core/partial_codec.py` writes and reads it).
        It shares this partial's dicts (no copies: it is encoded at once)."""
        return {
            "b": {
                b: {"c": agg.counts, "s": agg.sketches}
                for b, agg in self.buckets.items()
                if not agg.is_empty()
            },
            "l": {kind: counts for kind, counts in self.live.items() if counts},
        }

    def is_empty(self) -> bool:
        return not self.live and all(a.is_empty() for a in self.buckets.values())

    def merge(self, other: ChannelPartial) -> None:
        """Add another partial's deltas to this one."""
        for kind, theirs in other.live.items():
            self.merge_live(kind, theirs)
        for bucket, agg in other.buckets.items():
            target = self.buckets.get(bucket)
            if target is None:
                target = self.buckets[bucket] = Aggregate()
            target.merge(agg)


class Partials:
    """Pre-aggregation: many events' facts become one partial per series."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.channels: dict[str, ChannelPartial] = {}
        #: queue label → fact series → the partials its facts are added to (reset by `drain`)
        self._targets: dict[str, dict[str, tuple[ChannelPartial, ...]]] = {}

    def _targets_of(self, series: str, queue: str) -> tuple[ChannelPartial, ...]:
        """A channel's facts are counted in the channel and, with a `queue` label, in
        `queue:<label>`; a `<channel>\x1f<queue>` series (`queues.in_queue`) in its
        channel and its queue; an agent's series in itself."""
        if is_agent(series):
            names: tuple[str, ...] = (series,)
        else:
            parts = split(series)
            names = parts if parts is not None else (series, PREFIX + queue) if queue else (series,)
        channels = self.channels
        found = []
        for name in names:
            partial = channels.get(name)
            if partial is None:
                partial = channels[name] = ChannelPartial()
            found.append(partial)
        targets = self._targets[queue][series] = tuple(found)
        return targets

    def add(self, delta: Iterable[tuple[Fact, int]], queue: str) -> None:
        """Add signed facts; those of a channel are also counted in the queue `queue`
        (the label `Accepted.queue`; '': the channel only). A fact is added to its
        channel and its queue directly: at a few facts per (channel, queue) and batch,
        adding each twice costs less than one partial per pair merged into both at
        `drain`; and the label is passed along, not written into every fact's series
        (a new tuple and string per fact, 4% of stage 1 with 10 queues)."""
        bucket_ms = self.timeline.bucket_ms
        targets_of = self._targets.get(queue)
        if targets_of is None:
            targets_of = self._targets[queue] = {}
        for fact, sign in delta:
            series, at_ms, kind = fact[0], fact[1], fact[2]
            targets = targets_of.get(series)
            if targets is None:
                targets = self._targets_of(series, queue)
            if kind in LIVE_KINDS:
                for partial in targets:
                    partial.add_live(kind, at_ms, sign)
                continue
            bucket = at_ms - at_ms % bucket_ms  # Timeline.bucket_of, inlined (per fact)
            effect = effect_of(fact)
            for partial in targets:
                agg = partial.buckets.get(bucket)
                if agg is None:
                    agg = partial.buckets[bucket] = Aggregate()
                agg.add_effect(effect, sign)

    def drain(self) -> dict[str, ChannelPartial]:
        """The non-empty partials by reported series: the channels (each with its
        queues' facts), the queues `queue:<name>` (across channels), agents, and the
        channels rolled up into `all`."""
        ready = self.channels
        self.channels = {}
        self._targets = {}
        rollup = ChannelPartial()
        for series, partial in ready.items():
            if not is_queue(series) and not is_agent(series):
                rollup.merge(partial)
        ready[ALL] = rollup
        return {series: partial for series, partial in ready.items() if not partial.is_empty()}


class Scoreboard:
    """Windows and live queues of the channels this process owns."""

    def __init__(
        self,
        timeline: Timeline,
        now_ms: int,
        reported: tuple[str, ...] | None = None,
        rules: tuple[Rule, ...] | None = None,
    ) -> None:
        self.timeline = timeline
        self.now_ms = now_ms
        #: Windows published as snapshots; the timeline may track more (alert rules' windows).
        self.reported = reported or tuple(w.name for w in timeline.windows)
        #: With `rules`, a series keeps the reported windows and those of the rules that
        #: watch it (`Rule.applies_to`): agent series and, by default, queue series keep
        #: no 2-minute window. None: every series keeps every window of the timeline.
        self.rules = rules
        self.channels: dict[str, ChannelWindows] = {}
        self.live: dict[str, LiveQueue] = {}
        #: Buckets dropped by retention, per channel, until the owner deletes them from storage.
        self.dropped: dict[str, list[int]] = {}
        #: Bumped by every change, so snapshots (sketch quantiles for ~40 objects) are
        #: rebuilt only when something moved, not on every scrape or push.
        self.version = 0
        self._snapshots: tuple[tuple[int, int], list[dict[str, Any]]] | None = None

    def channel(self, channel: str) -> ChannelWindows:
        found = self.channels.get(channel)
        if found is None:
            found = self.channels[channel] = ChannelWindows(
                self.timeline, self.now_ms, self.windows_of(channel)
            )
            self.version += 1  # a new owned channel: its rows join the snapshots
        return found

    def windows_of(self, series: str) -> frozenset[str] | None:
        """The windows a series keeps (None: all of the timeline's)."""
        if self.rules is None:
            return None
        watched = (w for rule in self.rules if rule.applies_to(series) for w in rule.windows)
        return frozenset((*self.reported, *watched))

    def live_queue(self, channel: str) -> LiveQueue:
        found = self.live.get(channel)
        if found is None:
            found = self.live[channel] = LiveQueue()
        return found

    def apply(self, channel: str, partial: ChannelPartial) -> list[int]:
        """Fold a partial in; returns the buckets it actually changed (held ones)."""
        windows = self.channel(channel)
        changed = windows.apply_all(partial.buckets)
        if partial.live:
            queue = self.live_queue(channel)
            for kind, deltas in partial.live.items():
                queue.apply(kind, deltas)
        if changed or partial.live:
            self.version += 1
        return changed

    def advance(self, now_ms: int) -> None:
        """Slide every window to `now_ms`, remembering the buckets retention dropped."""
        if self.timeline.bucket_of(now_ms) != self.timeline.bucket_of(self.now_ms):
            self.version += 1  # window edges move only at bucket boundaries
        self.now_ms = now_ms
        quiet = []
        for channel, windows in self.channels.items():
            dropped = windows.advance(now_ms)
            if dropped:
                self.dropped.setdefault(channel, []).extend(dropped)
            if not windows.buckets and is_agent(channel):
                quiet.append(channel)
        for channel in quiet:  # memory follows the agents active within retention
            del self.channels[channel]

    def take_dropped(self, channel: str) -> list[int]:
        return self.dropped.pop(channel, [])

    def forget(self, channel: str) -> None:
        """Stop reporting a channel whose partition moved to another worker."""
        self.channels.pop(channel, None)
        self.live.pop(channel, None)
        self.version += 1

    def owned(self) -> list[str]:
        """The channels and queues this process owns (agent series are not reported here)."""
        return sorted(c for c in set(self.channels) | set(self.live) if not is_agent(c))

    def agent_windows(self) -> dict[str, dict[str, Aggregate]]:
        """Agent series this process owns → their window aggregates (non-empty ones)."""
        found: dict[str, dict[str, Aggregate]] = {}
        for key, windows in self.channels.items():
            if is_agent(key):
                held = {name: agg for name, agg in windows.windows.items() if not agg.is_empty()}
                if held:
                    found[key] = held
        return found

    def figures(self, channel: str) -> LiveFigures:
        """The channel's live-queue gauges now."""
        queue = self.live.get(channel)
        return LiveFigures() if queue is None else queue.figures(self.now_ms)

    def open_breaches(self, channel: str, window: str) -> dict[str, int]:
        """Open tickets whose first-response / resolution target passed inside the
        window (counters `slafr_open`, `slares_open`): SLA attainment counts them as
        breached now, not only once they are answered (SPEC §5)."""
        queue = self.live.get(channel)
        if queue is None:
            return {}
        spec = next(w for w in self.timeline.windows if w.name == window)
        low = self.timeline.lower_edge(spec, self.now_ms)
        return {
            "slafr_open": queue.count_between("first_response_due", low, self.now_ms),
            "slares_open": queue.count_between("resolution_due", low, self.now_ms),
        }

    def views(self, channel: str) -> dict[str, Aggregate]:
        """Every window of the channel as alert rules read it: its aggregate plus the
        open breaches inside it (sketches shared, not copied)."""
        windows = self.channel(channel).windows
        return {name: agg.with_counts(self.open_breaches(channel, name)) for name, agg in windows.items()}

    def snapshots(self, exact: bool = False) -> list[dict[str, Any]]:
        """Every owned channel × reported window; rebuilt when something changed, and
        at least once a second so `as_of` (and the live queue's ages) move on. With
        `exact`, built at `now_ms` itself (a reference compared at a given `as_of`)."""
        key = (self.version, self.now_ms if exact else self.now_ms // 1000)
        if exact or self._snapshots is None or self._snapshots[0] != key:
            self._snapshots = (key, self._build_snapshots())
        return self._snapshots[1]

    def _build_snapshots(self) -> list[dict[str, Any]]:
        as_of = format_ms(self.now_ms)
        result = []
        for channel in self.owned():
            windows = self.channel(channel)
            live = self.figures(channel)
            for name in self.reported:
                view = windows.window(name).with_counts(self.open_breaches(channel, name))
                result.append(build_snapshot(channel, name, view, live, as_of, windows.previous_window(name)))
        return result
