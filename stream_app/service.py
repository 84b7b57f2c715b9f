"""The Faust shell: topics, tables and agents that move data into and out of the core.

Data flow (see README "Design"):

    cx.tickets ┐                                   ┌→ scores table (changelog) ┐
    cx.chats   ┼→ stage 1: intake per input ───────┤  stage 2: merge per       ├→ /metrics, cx.metrics
    cx.surveys ┘  partition (validate, dedup,      │  channel (one owner per   │   /api/v1/scores
       │          state machines) → partials ──────┘  channel) → windows       ┘
       └→ cx.deadletter (reason headers)

Stage 1 keeps per-ticket/chat/survey state in tables co-partitioned with its
input topic; it sums fact deltas in memory and flushes one partial per channel
every flush interval to the internal `<app_id>-partials` topic, keyed by
channel. Stage 2 owns each channel on exactly one worker and keeps its event-
time buckets in the `scores` table, so a restarted or rebalanced worker
rebuilds its windows from the changelog.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust
import orjson
from aiohttp import web as aiohttp_web
from aiokafka import AIOKafkaConsumer
from faust.streams import _current_event
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_app import http_auth
from stream_app.config import Settings
from stream_app.core import alerts, lifecycle
from stream_app.core.aggregate import Aggregate
from stream_app.core.intake import INPUTS, REASONS, Accepted, Intake, Rejected, Schemas
from stream_app.core.lifecycle import State
from stream_app.core.scoreboard import ALL, ChannelPartial, Partials, Scoreboard
from stream_app.core.snapshot import same_scores
from stream_app.metrics import Instruments
from stream_app.topics import partitions_of
from stream_app.wallboard import (
    PUSH_INTERVAL_S,
    RECONNECT_MS,
    STATIC,
    Alerts,
    board,
    snapshot_time_ms,
    sse_event,
    static_file,
)

log = logging.getLogger("stream_app")

METRICS_TOPIC = "cx.metrics"
ALERTS_TOPIC = "cx.alerts"
DEADLETTER_TOPIC = "cx.deadletter"
#: Re-publish unchanged snapshots this often, so readers can tell "quiet" from "stale".
HEARTBEAT_MS = 5_000
EXPIRY_SWEEP_MS = 60_000
#: Most input events folded per batch (per input topic); a batch also ends after the
#: flush interval, which bounds the latency it adds.
INTAKE_BATCH = 2000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class BatchState:
    """A state table during one intake batch: a record cache in front of it.

    Reads see the batch's own writes (from any partition: a survey replayed under
    another key still finds its response); `write_back` stores each changed key
    once, so an entity touched by several events of a batch costs one changelog
    record, as in Kafka Streams' record cache. Each key is written through the
    Faust table with an event of the partition that wrote it as the current event,
    so its changelog record and RocksDB column land on that partition.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.dirty: dict[str, tuple[int, State | None]] = {}  # key → (partition, value or deleted)
        self.events: dict[int, Any] = {}  # partition → an event of it in this batch
        self.views: dict[int, BatchStore] = {}

    def view(self, partition: int, event: Any) -> BatchStore:
        found = self.views.get(partition)
        if found is None:
            self.events[partition] = event
            found = self.views[partition] = BatchStore(self, partition)
        return found

    def get(self, key: str) -> State | None:
        if key in self.dirty:
            return self.dirty[key][1]
        value: State | None = self.table.get(key)
        return value

    def write_back(self) -> None:
        by_partition: dict[int, list[tuple[str, State | None]]] = {}
        for key, (partition, value) in self.dirty.items():
            by_partition.setdefault(partition, []).append((key, value))
        for partition, changes in by_partition.items():
            token = _current_event.set(weakref.ref(self.events[partition]))
            try:
                for key, value in changes:
                    if value is None:
                        self.table.pop(key, None)
                    else:
                        self.table[key] = value
            finally:
                _current_event.reset(token)
        self.dirty.clear()


class BatchStore(MutableMapping[str, State]):
    """One input partition's view of a `BatchState`. Values carry their partition
    (`p`) so the expiry sweep only sees this partition's keys."""

    def __init__(self, batch: BatchState, partition: int) -> None:
        self.batch = batch
        self.partition = partition

    def __getitem__(self, key: str) -> State:
        found = self.batch.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: str, value: State) -> None:
        value["p"] = self.partition
        self.batch.dirty[key] = (self.partition, value)

    def __delitem__(self, key: str) -> None:
        self[key]  # KeyError when absent, as a mapping must
        self.batch.dirty[key] = (self.partition, None)

    def __iter__(self) -> Iterator[str]:
        dirty = self.batch.dirty
        stored = (k for k, v in list(self.batch.table.items()) if v.get("p") == self.partition)
        yield from (k for k in stored if k not in dirty)
        yield from (k for k, (p, v) in list(dirty.items()) if p == self.partition and v is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.batch.get(key) is not None


class CxService:
    """Builds the Faust app for one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeline = settings.timeline()
        self.intake = Intake(
            Schemas(), frozenset(settings.channels), self.timeline, settings.lifecycle_rules()
        )
        self.scoreboard = Scoreboard(self.timeline, now_ms(), settings.windows)
        #: (channel, window) → (snapshot from cx.metrics, its `as_of` in ms, parsed once).
        self.global_view: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        self.global_records = 0
        self.global_alerts = Alerts()
        #: Wall-clock ms of the last record from cx.metrics / cx.alerts, and of the
        #: last partial merged per owned channel: how the wallboard tells live from stale.
        self.last_output_ms = 0
        self.last_merged: dict[str, int] = {}
        self.started_ms = now_ms()
        self.published: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.last_sweep: dict[tuple[str, int], int] = {}
        #: (kind, input partition) → state key → when it may expire.
        self.expiry_index: dict[tuple[str, int], dict[str, int]] = {}
        #: Highest offset this process handled per input partition. Faust may hand
        #: a record over twice right after a table restore; the second time is skipped.
        self.handled: dict[tuple[str, int], int] = {}
        #: Offset of the partial that last changed each scores-table key: replaying a
        #: partial after a crash or rebalance applies only what it had not yet applied.
        self.applied: dict[str, int] = {}
        self.last_evaluated: dict[str, int] = {}
        self.last_sent: dict[str, int] = {}
        self.heartbeat_channels = (*settings.channels, ALL)
        self.instruments = Instruments(
            self.owned_snapshots,
            topics=INPUTS,
            reasons=REASONS,
            rules=[(rule.name, rule.severity) for rule in settings.alert_rules],
            lag=self.input_lag,
            data_age=lambda: (now_ms() - self.data_at()) / 1000,
        )
        self.app = self._build_app()

    # --- wiring ----------------------------------------------------------------

    def _build_app(self) -> faust.App:
        s = self.settings
        on_tansu = s.broker_kind == "tansu"
        app = faust.App(
            s.app_id,
            broker=s.broker_urls,
            broker_credentials=s.faust_credentials(),
            store=s.store,
            datadir=s.data_dir,
            web_port=s.web_port,
            web_bind=s.web_host,
            web_in_thread=False,
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication_factor,
            topic_allow_declare=True,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            broker_commit_every=1000,
            broker_commit_interval=1.0,
            producer_linger=0.005,
            table_standby_replicas=0,
            # Room for several intake batches per input partition before Faust pauses it.
            stream_buffer_maxsize=4 * INTAKE_BATCH,
            key_serializer="raw",
            value_serializer="raw",
            # tansu holds a JoinGroup for about half the session timeout and ignores
            # LeaveGroup, so a short session makes joins and restarts take ~1 s there;
            # Kafka refuses sessions under group.min.session.timeout.ms (6 s by default).
            broker_session_timeout=2.0 if on_tansu else 10.0,
            broker_heartbeat_interval=0.5 if on_tansu else 3.0,
            # tansu reports a batch's base offset + 1 as the end offset, which makes
            # Faust restore only part of a changelog; one record per batch avoids it.
            producer_max_batch_size=1 if on_tansu else 16384,
        )
        parts = s.partitions

        def raw_topic(name: str, **extra: Any) -> Any:
            return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=parts, **extra)

        def table(name: str) -> Any:
            schema: Any = faust.Schema(key_serializer="json", value_serializer="json")
            return app.Table(name, default=None, partitions=parts, schema=schema)

        self.inputs = {name: raw_topic(name) for name in INPUTS}
        self.partials_topic = raw_topic(f"{s.app_id}-partials", internal=True)
        self.metrics_topic = raw_topic(METRICS_TOPIC, config={"cleanup.policy": "compact"})
        self.deadletter_topic = raw_topic(DEADLETTER_TOPIC)
        self.alerts_topic = raw_topic(ALERTS_TOPIC)
        self.tables = {kind: table(f"{kind}-state") for _, kind, _ in INPUTS.values()}
        self.scores = table("scores")
        # Alert episodes, one record per channel, written by the merge agent while it
        # handles that channel's partials: co-partitioned with the channel like `scores`.
        self.alert_states = table("alert-state")
        self.scores.on_recover(self._rebuild_scoreboard)
        app.on_partitions_revoked.connect(self._on_revoked)

        for name, topic in self.inputs.items():
            app.agent(topic, name=f"intake-{name.split('.')[1]}")(self._intake_agent(name))
        app.agent(self.partials_topic, name="merge")(self._merge_agent)
        app.timer(s.flush_interval_ms / 1000)(self._send_heartbeats)
        app.timer(s.snapshot_interval_ms / 1000)(self._publish_snapshots)
        app.task(self._follow_outputs)
        self._routes(app)
        return app

    def _routes(self, app: faust.App) -> None:
        service = self
        token = self.settings.api_token

        def denied(view: View, request: Request) -> Response | None:
            """401 unless the request carries the API token (when one is configured)."""
            raw: Any = request
            presented = http_auth.presented_token(raw.headers, raw.cookies, raw.query)
            if http_auth.allowed(token, presented):
                return None
            return view.json(
                {"error": "a bearer token is required"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )

        @app.page("/metrics")
        class MetricsView(View):
            async def get(self, request: Request) -> Response:
                body = generate_latest(service.instruments.registry)
                return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

        @app.page("/api/v1/scores")
        class ScoresView(View):
            async def get(self, request: Request) -> Response:
                if refusal := denied(self, request):
                    return refusal
                channel = request.query.get("channel") or None
                window = request.query.get("window") or None
                found = [
                    snap
                    for (c, w), (snap, _) in sorted(service.all_snapshots().items())
                    if (channel is None or c == channel) and (window is None or w == window)
                ]
                return self.bytes(orjson.dumps(found), content_type="application/json")

        @app.page("/api/v1/stream")
        class StreamView(View):
            """Server-Sent Events for the wallboard: one `board` event per second."""

            async def get(self, request: Request) -> Any:
                if refusal := denied(self, request):
                    return refusal
                windows = service.settings.windows
                window = request.query.get("window") or ("1h" if "1h" in windows else windows[0])
                if window not in windows:
                    return self.error(400, f"unknown window {window!r}")
                channels = [c for c in (request.query.get("channels") or "").split(",") if c]
                response = aiohttp_web.StreamResponse(
                    headers={
                        "Content-Type": "text/event-stream",
                        "Cache-Control": "no-cache",
                        "X-Accel-Buffering": "no",
                    }
                )
                await response.prepare(request)  # type: ignore[arg-type]
                await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
                try:
                    while not service.app.should_stop:
                        payload = service.board(window, channels)
                        await response.write(sse_event("board", orjson.dumps(payload)))
                        await asyncio.sleep(PUSH_INTERVAL_S)
                except (ConnectionResetError, asyncio.CancelledError):
                    pass
                return response

        @app.page("/wallboard")
        class WallboardView(View):
            async def get(self, request: Request) -> Response:
                if refusal := denied(self, request):
                    return refusal
                page = self.bytes(static_file("wallboard.html"), content_type="text/html")
                if token is not None:  # the page's script and event stream cannot send headers
                    raw: Any = page
                    raw.set_cookie(http_auth.COOKIE, token, httponly=True, samesite="Strict", path="/")
                return page

        @app.page("/wallboard/{name}")
        class WallboardAsset(View):
            async def get(self, request: Request, name: str) -> Response:
                if refusal := denied(self, request):
                    return refusal
                if name not in STATIC:
                    return self.error(404, "not found")
                return self.bytes(static_file(name), content_type=STATIC[name])

        @app.page("/healthz")
        class HealthView(View):
            async def get(self, request: Request) -> Response:
                return self.json(
                    {
                        "status": "ok",
                        "owned_channels": service.scoreboard.owned(),
                        "global_view_records": service.global_records,
                    }
                )

        del MetricsView, ScoresView, StreamView, WallboardView, WallboardAsset, HealthView

    # --- stage 1: intake --------------------------------------------------------

    def _intake_agent(self, topic: str) -> Any:
        kind = INPUTS[topic][1]

        async def agent(stream: Any) -> None:
            table = self.tables[kind]
            within = self.settings.flush_interval_ms / 1000
            async for events in stream.take_events(INTAKE_BATCH, within=within):
                await self._intake_batch(topic, kind, table, events)

        agent.__name__ = f"intake_{kind}"
        return agent

    async def _intake_batch(self, topic: str, kind: str, table: Any, events: list[Any]) -> None:
        """Fold a batch of input events; Faust acks them when this returns.

        Order matters for at-least-once: the batch's partials are *delivered* before
        its state is written. Once the state says "seen", a replayed event is a
        duplicate, so its contribution must already be on the partials topic; a crash
        in between replays the batch (it may count twice, never lose). Faust flushes
        the producer before it commits the input offsets.
        """
        now = now_ms()
        state = BatchState(table)
        partials = Partials(self.timeline)
        process, add = self.intake.process, partials.add
        accepted = duplicates = 0
        for event in events:
            message = event.message
            partition = message.partition
            if self._already_handled(topic, partition, message.offset):
                continue
            outcome = process(topic, event.value, now, state.view(partition, event))
            if type(outcome) is Accepted:
                add(outcome.delta)
                accepted += 1
            elif type(outcome) is Rejected:
                await self._dead_letter(topic, message, outcome)
            else:
                duplicates += 1
        for store in list(state.views.values()):
            self._maybe_expire(kind, store, now, partials)
        self._index_expiry(kind, state)
        await self._send_partials(partials.drain(), now)
        state.write_back()
        if accepted:
            self.instruments.events.labels(topic, "accepted").inc(accepted)
        if duplicates:
            self.instruments.events.labels(topic, "duplicate").inc(duplicates)

    async def _dead_letter(self, topic: str, message: Any, rejected: Rejected) -> None:
        headers = [
            ("x-error-reason", rejected.reason.encode()),
            ("x-error-detail", rejected.detail.encode("utf-8", "replace")),
            ("x-source-topic", topic.encode()),
            ("x-source-partition", str(message.partition).encode()),
            ("x-source-offset", str(message.offset).encode()),
        ]
        await self.deadletter_topic.send(key=message.key, value=message.value, headers=headers)
        self.instruments.events.labels(topic, "dead_letter").inc()
        self.instruments.dead_letters.labels(topic, rejected.reason).inc()
        log.debug("dead-letter %s %s: %s", topic, rejected.reason, rejected.detail)

    def _expires_at(self, kind: str, state: State) -> int | None:
        retention, ttl = self.timeline.retention_ms, self.settings.open_state_ttl_ms
        return lifecycle.expires_at(kind, state, retention, ttl)

    def _maybe_expire(self, kind: str, store: BatchStore, now: int, partials: Partials) -> None:
        """Drop expired ticket/chat/survey state of one input partition, once a minute.

        An in-memory index (key → when it may go) is kept current by every batch, so
        a sweep touches only the due keys; it is built by one full scan of the
        partition the first time this process sweeps it (after start or a rebalance).
        """
        key = (kind, store.partition)
        if now - self.last_sweep.get(key, 0) < EXPIRY_SWEEP_MS:
            return
        self.last_sweep[key] = now
        index = self.expiry_index.get(key)
        if index is None:
            index = self.expiry_index[key] = {}
            for state_key, state in store.items():
                deadline = self._expires_at(kind, state)
                if deadline is not None:
                    index[state_key] = deadline
        due = [state_key for state_key, deadline in index.items() if deadline < now]
        if not due:
            return
        gone, retract = self.intake.expire_keys(kind, store, due, now, self.settings.open_state_ttl_ms)
        partials.add(retract)
        for state_key in due:
            del index[state_key]
        for state_key in set(due) - set(gone):  # touched since it was indexed
            current = store.get(state_key)
            deadline = None if current is None else self._expires_at(kind, current)
            if deadline is not None:
                index[state_key] = deadline

    def _index_expiry(self, kind: str, state: BatchState) -> None:
        for key, (partition, value) in state.dirty.items():
            index = self.expiry_index.get((kind, partition))
            if index is None:
                continue  # built by this partition's first sweep
            deadline = None if value is None else self._expires_at(kind, value)
            if deadline is None:
                index.pop(key, None)
            else:
                index[key] = deadline

    async def _send_partials(self, ready: dict[str, ChannelPartial], now: int) -> None:
        """Send partials and wait until the broker has them (see `_intake_batch`)."""
        deliveries = []
        for channel, partial in ready.items():
            self.last_sent[channel] = now
            deliveries.append(
                await self.partials_topic.send(key=channel.encode(), value=orjson.dumps(partial.to_json()))
            )
        if deliveries:
            await asyncio.gather(*deliveries)
            self.instruments.partials.inc(len(deliveries))

    async def _send_heartbeats(self) -> None:
        """An empty partial for every channel with nothing sent for a second, so its
        owner still sees the channel's stream move (alerts are stepped there)."""
        now = now_ms()
        quiet = {
            channel: ChannelPartial()
            for channel in self.heartbeat_channels
            if now - self.last_sent.get(channel, 0) >= self.settings.snapshot_interval_ms
        }
        await self._send_partials(quiet, now)

    # --- stage 2: merge per channel ---------------------------------------------

    def _already_handled(self, topic: str, partition: int, offset: int) -> bool:
        key = (topic, partition)
        if offset <= self.handled.get(key, -1):
            return True
        self.handled[key] = offset
        return False

    async def _merge_agent(self, stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            partition, offset = message.partition, message.offset
            if self._already_handled(message.topic, partition, offset):
                continue
            channel = event.key.decode()
            received = ChannelPartial.from_json(orjson.loads(event.value))
            fresh = ChannelPartial()
            fresh.buckets = {
                b: agg
                for b, agg in received.buckets.items()
                if self.applied.get(f"{channel}|{b}", -1) < offset
            }
            if self.applied.get(f"{channel}|open", -1) < offset:
                fresh.open_delta = received.open_delta
            windows = self.scoreboard.channel(channel)
            for bucket in self.scoreboard.apply(channel, fresh):
                key = f"{channel}|{bucket}"
                agg = windows.buckets.get(bucket) or Aggregate()
                self.scores[key] = {"p": partition, "o": offset, **agg.to_json()}
                self.applied[key] = offset
            if fresh.open_delta:
                key = f"{channel}|open"
                self.scores[key] = {
                    "p": partition,
                    "o": offset,
                    "n": self.scoreboard.open_tickets.get(channel, 0),
                }
                self.applied[key] = offset
            for bucket in self.scoreboard.take_dropped(channel):
                key = f"{channel}|{bucket}"
                self.scores.pop(key, None)
                self.applied.pop(key, None)
            now = self.last_merged[channel] = now_ms()
            # New data is evaluated at once (an alert should not wait for the next
            # heartbeat); quiet channels once a second, so `for`/`clear_for` still run.
            moved = bool(fresh.buckets) or bool(fresh.open_delta)
            if moved or now - self.last_evaluated.get(channel, 0) >= self.settings.snapshot_interval_ms:
                await self._evaluate_alerts(channel, now)

    async def _rebuild_scoreboard(self) -> None:
        """Rebuild windows from the scores table for the partitions this worker owns now.

        Faust's memory store keeps keys written live after their partition is revoked
        (it forgets only recovered ones), so records are filtered by their partition.
        """
        board = Scoreboard(self.timeline, now_ms(), self.settings.windows)
        applied: dict[str, int] = {}
        topic = self.partials_topic.get_topic_name()
        owned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}
        for key, value in list(self.scores.items()):
            if value.get("p") not in owned:
                continue
            applied[key] = int(value.get("o", -1))
            channel, _, suffix = key.partition("|")
            if suffix == "open":
                board.open_tickets[channel] = int(value["n"])
                continue
            partial = ChannelPartial()
            partial.buckets[int(suffix)] = Aggregate.from_json(value)
            board.apply(channel, partial)
        self.scoreboard = board
        self.applied = applied
        self.published.clear()
        log.info("scoreboard rebuilt: channels=%s", board.owned())

    def _on_revoked(self, *args: Any, **kwargs: Any) -> None:
        # Until recovery tells us what we own again, report nothing rather than stale figures.
        self.scoreboard = Scoreboard(self.timeline, now_ms(), self.settings.windows)
        self.applied = {}
        self.handled.clear()
        self.instruments.alert_firing.clear()
        self.expiry_index.clear()  # rebuilt by each partition's next sweep
        self.last_sweep.clear()

    # --- outputs ------------------------------------------------------------------

    def owned_snapshots(self) -> list[dict[str, Any]]:
        self.scoreboard.advance(now_ms())
        return self.scoreboard.snapshots()

    def all_snapshots(self) -> dict[tuple[str, str], tuple[dict[str, Any], int]]:
        """Every channel's snapshots with the wall-clock ms their data last moved.

        Other workers' channels come from cx.metrics; this worker's own are live.
        """
        view = dict(self.global_view)
        for snap in self.owned_snapshots():
            channel = snap["channel"]
            view[(channel, snap["window"])] = (snap, self.last_merged.get(channel, 0))
        return view

    def data_at(self) -> int:
        """Wall-clock ms data last reached this worker (merged partials, cx.metrics, cx.alerts)."""
        return max([self.last_output_ms, *self.last_merged.values()]) or self.started_ms

    def input_lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, records behind) for the input partitions assigned here."""
        try:
            consumer = self.app.consumer
            assigned = [tp for tp in consumer.assignment() if tp.topic in INPUTS]
        except Exception:  # not started yet, or between assignments
            return []
        found = []
        for tp in sorted(assigned):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            done = self.handled.get((tp.topic, tp.partition))
            if done is None:
                committed = getattr(consumer, "_committed_offset", {}).get(tp)
                done = -1 if committed is None else committed - 1
            found.append((tp.topic, tp.partition, max(0, highwater - done - 1)))
        return found

    def board(self, window: str, channels: list[str]) -> dict[str, Any]:
        data_at = self.data_at()
        return board(
            self.all_snapshots().values(),
            self.global_alerts.firing(),
            window=window,
            windows=self.settings.windows,
            channels=channels,
            now_ms=now_ms(),
            data_at_ms=data_at,
            timezone=self.settings.timezone,
        )

    async def _publish_snapshots(self) -> None:
        now = now_ms()
        self.scoreboard.advance(now)
        for snap in self.scoreboard.snapshots():
            key = (snap["channel"], snap["window"])
            last = self.published.get(key)
            if last and same_scores(last[1], snap) and now - last[0] < HEARTBEAT_MS:
                continue
            self.published[key] = (now, snap)
            await self.metrics_topic.send(key=f"{key[0]}/{key[1]}".encode(), value=orjson.dumps(snap))

    async def _evaluate_alerts(self, channel: str, now: int) -> None:
        """Step every rule for one owned channel (inside its partials stream); publish changes."""
        self.last_evaluated[channel] = now
        self.scoreboard.advance(now)
        stored: dict[str, alerts.State] = self.alert_states.get(channel) or {}
        states = dict(stored)
        windows = self.scoreboard.channel(channel).windows
        open_now = self.scoreboard.open_tickets.get(channel, 0)
        messages = alerts.evaluate(self.settings.alert_rules, channel, windows, open_now, states, now)
        if states != stored:
            self.alert_states[channel] = states
        for message in messages:
            record_key = f"{message['rule']}/{channel}/{message['window']}".encode()
            await self.alerts_topic.send(key=record_key, value=orjson.dumps(message))
            self.instruments.alerts.labels(message["rule"], message["severity"], message["state"]).inc()
            log.warning("alert %s: %s", message["state"], message["summary"])
        for rule_window, state in states.items():
            rule, _, window = rule_window.partition("/")
            firing = state["s"] in ("firing", "clearing")
            self.instruments.alert_firing.labels(rule, channel, window).set(1 if firing else 0)

    async def _follow_outputs(self) -> None:
        """Global view for the API and wallboard: every worker reads all of `cx.metrics`
        and `cx.alerts` (no group), so any worker can show every channel."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            **self.settings.kafka_client_options(),
        )
        await consumer.start()
        try:
            tps = [
                *(await partitions_of(consumer, METRICS_TOPIC)),
                *(await partitions_of(consumer, ALERTS_TOPIC)),
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            async for record in consumer:
                self.last_output_ms = now_ms()
                if record.value is None:
                    continue
                try:
                    value = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    log.warning("skipping a record that is not JSON on %s", record.topic)
                    continue
                if not isinstance(value, dict):
                    continue
                if record.topic == ALERTS_TOPIC:
                    self.global_alerts.record(value)
                elif record.key is not None and (as_of_ms := snapshot_time_ms(value)) is not None:
                    channel, _, window = record.key.decode(errors="replace").partition("/")
                    self.global_view[(channel, window)] = (value, as_of_ms)
                    self.global_records += 1
        finally:
            await consumer.stop()
