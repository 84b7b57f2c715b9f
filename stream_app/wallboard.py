"""The live wallboard: what `/api/v1/stream` pushes and the static page that shows it.

The page (`stream_app/web/`) is plain HTML, CSS and JavaScript, served as is:
nothing to build at run time. The server pushes one `board` event per second
over Server-Sent Events; the browser's EventSource reconnects by itself.

Staleness is judged on the server (it knows when data last arrived) and on the
page (it knows when a push last arrived), so a stopped pipeline and a dropped
connection both show "stale since hh:mm:ss".
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

from stream_app.core.aggregate import Aggregate
from stream_app.core.live_queue import LiveFigures
from stream_app.core.measures import METRICS, measure
from stream_app.core.queues import OTHER, PREFIX, is_queue, queue_name
from stream_app.core.rules import Rule
from stream_app.core.scoreboard import ALL
from stream_app.core.timeutil import format_ms, parse_rfc3339_ms

#: A snapshot row older than this is stale (own rows move every second, others
#: are re-published at least every `HEARTBEAT_MS`).
ROW_STALE_AFTER_MS = 15_000
#: The whole board is stale when no data reached this worker for this long.
BOARD_STALE_AFTER_MS = 10_000
PUSH_INTERVAL_S = 1.0
#: EventSource waits this long before reconnecting after the connection drops.
RECONNECT_MS = 2_000

STATIC = {
    "wallboard.html": "text/html",
    "wallboard.css": "text/css",
    "wallboard.js": "text/javascript",
}


def static_file(name: str) -> bytes:
    return resources.files("stream_app").joinpath("web", name).read_bytes()


class Alerts:
    """Latest state of every alert series (rule, channel, window) seen on `cx.alerts`."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str, str], dict[str, Any]] = {}

    def record(self, message: dict[str, Any]) -> None:
        key = (str(message.get("rule")), str(message.get("channel")), str(message.get("window")))
        self.latest[key] = message

    def firing(self) -> list[dict[str, Any]]:
        order = {"critical": 0, "warning": 1, "info": 2}
        active = [m for m in self.latest.values() if m.get("state") == "firing"]
        return sorted(active, key=lambda m: (order.get(m.get("severity", ""), 3), m.get("started_at", "")))


def board(
    rows: Iterable[tuple[dict[str, Any], int]],
    firing: list[dict[str, Any]],
    *,
    window: str,
    windows: tuple[str, ...],
    channels: list[str] | None,
    now_ms: int,
    data_at_ms: int,
    timezone: str,
    min_sample: int = 30,
    rules: tuple[Rule, ...] = (),
    by: str = "channel",
    queues: list[str] | None = None,
) -> dict[str, Any]:
    """One push: the snapshots of `window` (with when each was last updated) and active alerts.

    `rows` pairs each snapshot with the wall-clock ms its data last moved;
    `data_at_ms` is when the newest data this worker shows was written to Kafka.
    `by="queue"` shows the queue rows (of `queues` only, when given: a team's screen)
    under the `all` row instead of the channels. Every row has a `label` to show.
    """
    if by == "queue":
        wanted = {ALL, *(PREFIX + q for q in queues)} if queues else None

        def shown(series: str) -> bool:
            return series == ALL or (is_queue(series) and (wanted is None or series in wanted))
    else:
        wanted = None if not channels else set(channels)

        def shown(series: str) -> bool:
            return not is_queue(series) and (wanted is None or series in wanted)

    scores = [
        {**snap, "updated_ms": updated, "label": _label(snap["channel"]), **_queue(snap["channel"])}
        for snap, updated in rows
        if snap["window"] == window and shown(snap["channel"])
    ]
    scores.sort(key=lambda s: (s["channel"] != ALL, s["channel"] == PREFIX + OTHER, s["channel"]))
    alerts = [a for a in firing if shown(str(a.get("channel")))]
    stale = now_ms - data_at_ms > BOARD_STALE_AFTER_MS
    live_rules = [r for r in rules if r.kind == "threshold" and METRICS[r.metric].kind == "gauge"]
    return {
        "now": format_ms(now_ms),
        "now_ms": now_ms,
        "timezone": timezone,
        "window": window,
        "windows": list(windows),
        "by": by,
        "scores": scores,
        "alerts": alerts,
        "row_stale_after_ms": ROW_STALE_AFTER_MS,
        "stale_since_ms": data_at_ms if stale else None,
        #: scores from fewer responses are shown dimmed with their n and interval
        "min_sample": min_sample,
        #: SLA view colours: channel → live metric → worst severity of a threshold rule it is beyond now
        "live_marks": {s["channel"]: live_marks(s, live_rules) for s in scores if "live" in s},
    }


def _label(series: str) -> str:
    """What a row is called on the screen: the channel, or the queue's name."""
    return queue_name(series) if is_queue(series) else series


def _queue(series: str) -> dict[str, str]:
    """A queue row also carries `queue` (its name), as queue snapshots do in
    `/api/v1/scores` and `cx.metrics`; its `channel` stays the row's series id."""
    return {"queue": queue_name(series)} if is_queue(series) else {}


_RANK = {"info": 0, "warning": 1, "critical": 2}


def live_marks(snapshot: dict[str, Any], rules: list[Rule]) -> dict[str, str]:
    """Which live-queue figures of a row are beyond a threshold rule right now, and the
    worst severity: the wallboard colours them at once (the rule's alert waits for `for`).
    Rules for every channel colour the `all` row too."""
    figures = LiveFigures.from_json(snapshot["live"])
    marks: dict[str, str] = {}
    for rule in rules:
        channel = snapshot["channel"]
        if not (rule.applies_to(channel) or (rule.channels is None and channel == ALL)):
            continue
        value = measure(rule.metric, Aggregate(), figures).value
        if value is None or rule.threshold is None:
            continue
        beyond = value > rule.threshold if rule.op == "above" else value < rule.threshold
        if beyond and _RANK.get(rule.severity, 0) >= _RANK.get(marks.get(rule.metric, ""), -1):
            marks[rule.metric] = rule.severity
    return marks


def snapshot_time_ms(snapshot: dict[str, Any]) -> int | None:
    """A snapshot's `as_of` in epoch ms, or None when it has no valid one."""
    as_of = snapshot.get("as_of")
    if not isinstance(as_of, str):
        return None
    try:
        return parse_rfc3339_ms(as_of)
    except ValueError:
        return None


def sse_event(name: str, data: bytes) -> bytes:
    """One Server-Sent Event (data must be a single line, as compact JSON is)."""
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
