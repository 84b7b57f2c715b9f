"""The queue dimension (SPEC §4): with `STREAM_APP_QUEUES` set, every metric is also
reported per routing queue (or team), across channels.

A queue is carried as a *series* next to the channels. In stage 1 each fact of a
contact is emitted once, in its channel's series, with the contact's queue label
beside it (`intake.Accepted.queue`); `Partials.add` counts it in the channel's series
and in the series `queue:<name>` of the queue (and `drain` rolls the channels up into
`all`). A contact that moves to another queue has its facts written in the series
`<channel>\x1f<queue>` (`in_queue`): out of the old queue, into the new one.
From there on the merge stage, windows, alert rules and the live queue treat a
queue like a channel.

Queues outside the configured list (and contacts with no queue) are reported as
`other`, so there are at most len(list) + 1 queue series whatever the input says
(bounded label cardinality).

Which queue a contact is in: the `queue` of its latest event that names one (by
`occurred_at`, ties to the greater hash of the event id: order-free), so a ticket moved to
another queue is reported in the queue that has it now, and its figures move with
it. A survey response is in the queue its latest version naming one names (a re-rating
without `queue` leaves it there), else its offer's.

Outside the core, snapshots of a queue series are shown as `{"queue": <name>, ...}`
without `channel` (JSON, `cx.metrics`) and Prometheus series carry a `queue` label
instead of `channel` (`public`, `internal` convert).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream_app.core.aggregate import Fact

PREFIX = "queue:"
OTHER = "other"
#: Between the channel and the queue of a stage-1 series (neither name can hold it).
SEP = "\x1f"


@dataclass(frozen=True)
class Queues:
    """The configured queues; empty: the queue dimension is off."""

    names: frozenset[str] = frozenset()

    @property
    def enabled(self) -> bool:
        return bool(self.names)

    def label(self, raw: str | None) -> str:
        """The reported queue of a raw `queue` value: itself when listed, else `other`."""
        return raw if raw is not None and raw in self.names else OTHER

    def all_series(self) -> list[str]:
        """Every queue series that can exist (the listed queues and `other`); none
        while the dimension is off."""
        if not self.enabled:
            return []
        return [PREFIX + name for name in sorted(self.names | {OTHER})]


def is_queue(series: str) -> bool:
    return series.startswith(PREFIX)


def queue_name(series: str) -> str:
    """`queue:billing` → `billing`."""
    return series[len(PREFIX) :]


def in_queue(facts: Iterable[Fact], queue: str) -> list[Fact]:
    """Channel facts counted in their channel *and* `queue` (the reported label): the
    series `<channel>\x1f<queue>`, which `Partials.add` counts in both."""
    suffix = SEP + queue  # tuples unpacked by name: ~40% faster than *fact[1:] (per fact, per event)
    return [(channel + suffix, at_ms, kind, value, flag) for channel, at_ms, kind, value, flag in facts]


def split(series: str) -> tuple[str, str] | None:
    """`<channel>\x1f<queue>` → (channel, `queue:<queue>`); None for any other series."""
    channel, sep, queue = series.partition(SEP)
    return (channel, PREFIX + queue) if sep else None


def public(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as users see it: a queue series as `{"queue": name}`, no `channel`."""
    series = snapshot.get("channel")
    if not isinstance(series, str) or not is_queue(series):
        return snapshot
    shown = {"queue": queue_name(series)}
    shown.update((k, v) for k, v in snapshot.items() if k != "channel")
    return shown


def internal(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `public` (snapshots read back from `cx.metrics`)."""
    if "channel" in snapshot or not isinstance(snapshot.get("queue"), str):
        return snapshot
    kept = {k: v for k, v in snapshot.items() if k != "queue"}
    return {"channel": PREFIX + snapshot["queue"], **kept}


def select_snapshots(
    snapshots: Mapping[tuple[str, str], tuple[dict[str, Any], int]], query: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The (internal) snapshots a `/api/v1/scores` query asks for, in series order.

    `channel=` and `window=` filter as before; `queue=<name>` gives that queue's
    snapshots and `by=queue` every queue's (both are across channels, so neither goes
    with `channel=`); with neither, channel snapshots only (what clients written
    before queues expect). ValueError names a query that cannot be met.
    """
    channel = query.get("channel") or None
    window = query.get("window") or None
    queue = query.get("queue") or None
    by = query.get("by") or None
    if by not in (None, "channel", "queue"):
        raise ValueError(f"by must be channel or queue (got {by!r})")
    wants_queues = queue is not None or by == "queue"
    if wants_queues and channel is not None:
        raise ValueError("queue figures are across channels: ask for channel= or queue=, not both")
    found = []
    for (series, w), (snap, _) in sorted(snapshots.items()):
        if window is not None and w != window:
            continue
        if is_queue(series):
            if not wants_queues or (queue is not None and queue_name(series) != queue):
                continue
        elif wants_queues or (channel is not None and series != channel):
            continue
        found.append(snap)
    return found
