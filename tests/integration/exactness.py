"""A fixed stream of bench events and what the pure core says it must give.

Fault tests (crash, rebalance, broker outage) replay the stream through real
workers while something goes wrong, then compare every snapshot the workers
serve with the reference `Replay` at the same `as_of`: scores, counts and
percentiles must be equal, not close.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream_app import config
from stream_app.bench import make_events
from stream_app.config import DEFAULT_CHANNELS
from stream_app.core.intake import Intake, Schemas
from stream_app.core.queues import internal
from stream_app.core.replay import Replay
from stream_app.core.scoreboard import ALL
from stream_app.core.timeutil import DAY_MS
from stream_app.wallboard import snapshot_time_ms
from tests.integration.harness import RUN, WorkerProcess

#: Counts compared per snapshot to tell lost events from double-counted ones.
COUNT_PATHS = (
    ("volume", "tickets"),
    ("volume", "chats"),
    ("volume", "surveys"),
    ("csat", "n"),
    ("nps", "n"),
    ("ces", "n"),
    ("fcr", "n"),
    ("first_response_seconds", "n"),
    ("chat_first_response_seconds", "n"),
    ("resolution_seconds", "n"),
    ("chat_wait_seconds", "n"),
)


def exactly_once() -> bool:
    """Apache Kafka: transactions, exact figures. tansu: at_least_once (no loss)."""
    return os.environ.get("CX_TEST_BROKER_KIND", "kafka") == "kafka"


def owns_channels(worker: WorkerProcess) -> bool:
    return bool(worker.owned_channels())


@dataclass
class Stream:
    name: str
    records: list[tuple[str, bytes | None, bytes]]
    channels: list[str]
    reference: Replay
    env: dict[str, str] = field(default_factory=dict)
    #: Queue series (`queue:<name>`) the workers must report too (STREAM_APP_QUEUES).
    queues: list[str] = field(default_factory=list)


def messy_keys(
    records: list[tuple[str, bytes | None, bytes]], share: float, rng: random.Random
) -> list[tuple[str, bytes | None, bytes]]:
    """`share` of the records without a key (half) or keyed by something other than
    their entity id (half), as webhook bridges send them (SPEC §2)."""
    messy = []
    for topic, key, value in records:
        if rng.random() < share:
            key = None if rng.random() < 0.5 else f"bridge-{rng.randrange(7)}".encode()
        messy.append((topic, key, value))
    return messy


def bench_stream(
    name: str,
    events: int,
    seed: int,
    misrouted: float = 0.1,
    history: float = 0.05,
    extra: list[tuple[str, bytes | None, dict[str, Any]]] | None = None,
    queues: bool = False,
) -> Stream:
    """`events` bench events (60/25/15 mix, two hours of event time) on channels of this run only.

    Messy like real input: `misrouted` of the records are unkeyed or mis-keyed, and
    `history` as many again are tickets and chats of 2-3 days ago (older than every
    window: they build state and backlog only; their surveys are left out, as they
    would be dead-lettered `too_late`). `extra` (topic, key, event) records on the
    channel `scenario` (renamed like the others) are added after those, keys as given.
    With `queues`, contacts are spread over three listed queues, one that is not
    listed and none (`other`), and one in ten moves to another listed queue midway.
    """
    names = (*DEFAULT_CHANNELS, "scenario") if extra else DEFAULT_CHANNELS
    rename = {c: f"{c}_{name}_{RUN}" for c in names}
    now = int(time.time() * 1000)
    data = make_events(events, seed, now - 60_000)
    old: list[tuple[str, bytes, bytes]] = []
    if history:
        old_data = make_events(int(events * history), seed + 1, now - 2 * DAY_MS, span_ms=DAY_MS)
        old = [r for r in old_data.records if r[0] != "cx.surveys"]
    records: list[tuple[str, bytes | None, bytes]] = []
    listed = [f"q{i}_{name}_{RUN}" for i in range(3)]
    placed: dict[str, tuple[str | None, str | None]] = {}  # entity id → its queue, where it moves
    for topic, key, value in [*old, *data.records]:
        event = orjson.loads(value)
        event["channel"] = rename[event["channel"]]
        if queues:
            entity = str(event.get("ticket_id") or event.get("chat_id") or event.get("response_id"))
            if entity in placed:  # a later event: one contact in ten moved to another queue
                queue = placed[entity][1] or placed[entity][0]
            else:
                pick = random.Random(f"{seed}/{entity}")
                first = pick.choice([*listed, f"unlisted_{RUN}", None])
                moves = topic != "cx.surveys" and pick.random() < 0.1
                placed[entity] = (first, pick.choice(listed) if moves else None)
                queue = first
            if queue is not None:
                event["queue"] = queue
        records.append((topic, key, orjson.dumps(event)))
    records = messy_keys(records, misrouted, random.Random(seed))
    for topic, key, event in extra or []:
        records.append((topic, key, orjson.dumps({**event, "channel": rename[event["channel"]]})))
    channels = list(rename.values())
    # The default alert rules name default channels; these figures need no rules.
    no_rules = Path(tempfile.mkdtemp(prefix="cx-rules-")) / "none.yaml"
    no_rules.write_text("rules: []\n")
    env = {"STREAM_APP_CHANNELS": ",".join(channels), "STREAM_APP_RULES": str(no_rules)}
    if queues:
        env["STREAM_APP_QUEUES"] = ",".join(listed)
        env["STREAM_APP_AGENT_FIGURES"] = "on"
    settings = config.load(env)
    intake = Intake(
        Schemas(),
        frozenset(settings.channels),
        settings.timeline(),
        settings.lifecycle_rules(),
        queues=settings.queue_set,
        agent_figures=settings.agent_figures == "on",
    )
    reference = Replay(intake, now, reported=settings.windows)
    for topic, _, value in records:
        outcome = reference.feed(topic, value, now)
        assert outcome != "dead_letter", value
    series = settings.queue_set.all_series()
    return Stream(name, records, channels, reference, env, series)


def progress(workers: list[WorkerProcess], stream: Stream) -> int:
    """Contacts and survey responses shown for the stream (all/24h) by the worker
    that owns `all`. Only the owner counts: the others' /api/v1/scores shows what
    some worker on this broker last published to cx.metrics."""
    for worker in workers:
        if not worker.running() or ALL not in worker.owned_channels():
            continue
        for snap in worker.scores(channel=ALL, window="24h"):
            volume = snap["volume"]
            return int(volume["tickets"] + volume["chats"] + volume["surveys"])
    return 0


def total(stream: Stream) -> int:
    snap = _reference(stream, int(time.time() * 1000))[(ALL, "24h")]
    volume = snap["volume"]
    return int(volume["tickets"] + volume["chats"] + volume["surveys"])


@dataclass
class Comparison:
    equal: bool
    lost: int  # counts the workers show fewer of than the reference
    double: int  # counts they show more of
    differing: list[str]
    #: Per differing snapshot, its counts and live figures that differ (got/want): for
    #: failure messages, which CI shows but keeps no worker state for.
    counts: list[str] = field(default_factory=list)


def compare(workers: list[WorkerProcess], stream: Stream) -> Comparison:
    """Every (channel, window) snapshot the workers own vs the reference at its `as_of`.

    Each channel must be served by exactly one worker (its owner); the others see it
    only through `cx.metrics`, which `/api/v1/scores` also serves, so ownership is
    read from `/healthz`.
    """
    wanted = {*stream.channels, ALL, *stream.queues}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for worker in workers:
        if not worker.running():
            continue
        owned = (worker.owned_channels() | worker.owned_queues()) & wanted
        served = worker.scores() + ([internal(s) for s in worker.scores(by="queue")] if stream.queues else [])
        for snap in served:
            if snap["channel"] in owned:
                found[(snap["channel"], snap["window"])] = snap
    lost = double = 0
    differing = []
    counts: list[str] = []
    references: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
    timed = sorted((snapshot_time_ms(snap) or 0, key, snap) for key, snap in found.items())
    for as_of, (channel, window), snap in timed:  # the reference only moves forward in time
        if as_of not in references:
            references[as_of] = _reference(stream, as_of)
        expected = references[as_of][(channel, window)]
        if _without_as_of(snap) != _without_as_of(expected):
            if not differing:  # the first one in detail: which figures, got vs want
                fields = sorted(
                    k
                    for k in snap.keys() | expected.keys()
                    if k != "as_of" and snap.get(k) != expected.get(k)
                )
                detail = "; ".join(f"{k}: got {snap.get(k)!r} want {expected.get(k)!r}" for k in fields)
                differing.append(f"{channel}/{window} ({detail[:1500]})")
            else:
                differing.append(f"{channel}/{window}")
        off = []
        for path in COUNT_PATHS:
            got, want = _at(snap, path), _at(expected, path)
            lost += max(0, want - got)
            double += max(0, got - want)
            if got != want:
                off.append(f"{'.'.join(path)} {got}/{want}")
        live_got, live_want = snap.get("live") or {}, expected.get("live") or {}
        off.extend(
            f"live.{k} {live_got.get(k)}/{live_want.get(k)}"
            for k in sorted(live_got.keys() | live_want.keys())
            if k != "oldest_open_ticket_seconds" and live_got.get(k) != live_want.get(k)
        )
        if off:
            counts.append(f"{channel}/{window}: {', '.join(off)}")
    missing = {(c, w) for c in wanted for w in stream.reference.scoreboard.reported} - set(found)
    differing.extend(f"{c}/{w} (not served)" for c, w in sorted(missing))
    return Comparison(not differing, lost, double, differing, counts)


def _reference(stream: Stream, as_of_ms: int) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["channel"], s["window"]): s for s in stream.reference.snapshots(as_of_ms)}


def _without_as_of(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if k != "as_of"}


def _at(snap: dict[str, Any], path: tuple[str, str]) -> int:
    return int(snap[path[0]][path[1]] or 0)


def settle(workers: list[WorkerProcess], stream: Stream, timeout: float = 300) -> Comparison:
    """Wait until the workers' figures equal the reference, or stop changing with
    nothing missing (what is left over is then double-counted); return the comparison."""
    deadline = time.monotonic() + timeout
    last: Comparison | None = None
    steady_since = time.monotonic()
    while time.monotonic() < deadline:
        try:
            result = compare(workers, stream)
        except OSError:
            time.sleep(0.5)
            continue
        if result.equal:
            return result
        if last is None or (result.lost, result.double) != (last.lost, last.double):
            steady_since = time.monotonic()
        elif result.lost == 0 and time.monotonic() - steady_since > 20:
            return result
        last = result
        time.sleep(0.5)
    assert last is not None, workers[0].log_tail()
    return last
