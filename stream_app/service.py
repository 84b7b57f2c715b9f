"""The Faust shell: topics, tables and agents that move data into and out of the core.

Data flow (see README "Design"):

    cx.tickets ┐                                   ┌→ scores table (changelog) ┐
    cx.chats   ┼→ stage 1: intake per input ───────┤  stage 2: merge per       ├→ /metrics, cx.metrics
    cx.surveys ┘  partition (validate, dedup,      │  channel (one owner per   │   /api/v1/scores
       │          state machines) → partials ──────┘  channel) → windows       ┘
       └→ cx.deadletter (reason headers)

Stage 1 (`intake_stage.py`, plain aiokafka: Faust's consumer is too slow for
it) keeps per-ticket/chat/survey state co-partitioned with its input topic and
sends one partial per channel per batch to the internal `<app_id>-partials`
topic, keyed by channel, in the same Kafka transaction as its state changelog
and input offsets. Stage 2 (the Faust agent here) owns each channel on exactly
one worker and keeps its event-time buckets in the `scores` table, each record
with the partials offset it reflects, so a restarted or rebalanced worker
rebuilds its windows from the changelog and applies no partial twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream_app import __version__
from stream_app.agent_view import PUBLISH_INTERVAL_S as AGENTS_PUBLISH_INTERVAL_S
from stream_app.agent_view import AgentView, agents_topic
from stream_app.config import Settings
from stream_app.core import alerts
from stream_app.core.agents import is_agent
from stream_app.core.aggregate import Aggregate
from stream_app.core.intake import INPUTS, REASONS, Intake, Schemas
from stream_app.core.queues import OTHER, PREFIX, internal, is_queue, public, select_snapshots
from stream_app.core.scoreboard import ALL, ChannelPartial, Scoreboard
from stream_app.core.snapshot import same_scores
from stream_app.http_routes import register_routes
from stream_app.intake_stage import IntakeStage, now_ms, partials_topic
from stream_app.merge_tables import MEMORY, forget_all, replayed_table
from stream_app.metrics import Instruments
from stream_app.topics import ALERTS_TOPIC, METRICS_TOPIC, partitions_of
from stream_app.wallboard import (
    Alerts,
    board,
    snapshot_time_ms,
)

log = logging.getLogger("stream_app")

#: Re-publish unchanged snapshots this often, so readers can tell "quiet" from "stale".
HEARTBEAT_MS = 5_000
#: /healthz says "not ready" once the broker has acknowledged no write for this long
#: (heartbeat partials go out every second, so a healthy broker answers far sooner).
BROKER_SILENT_S = 15.0


class _ReadCommittedThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = "read_committed"  # read by AIOKafkaConsumer.start()
        return consumer


class _ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class _ReadCommittedTransport(faust_aiokafka.Transport):
    Consumer = _ReadCommittedConsumer


class ReadCommittedApp(faust.App):
    """A Faust app whose consumer reads only committed records.

    Faust chooses read_committed only in its own exactly_once mode, which makes
    every Faust producer transactional (and has open duplicate bugs upstream). We
    need it only to skip aborted intake transactions on the partials topic.
    """

    def _new_transport(self) -> Any:
        return _ReadCommittedTransport(self.conf.broker_consumer, self)


class CxService:
    """Builds the Faust app for one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeline = settings.timeline()
        self.intake = Intake(
            Schemas(),
            frozenset(settings.channels),
            self.timeline,
            settings.lifecycle_rules(),
            settings.open_state_ttl_ms,
            settings.queue_set,
            agent_figures=settings.agent_figures == "on",
        )
        self.scoreboard = Scoreboard(self.timeline, now_ms(), settings.windows)
        #: (channel, window) → (snapshot from cx.metrics, its `as_of` in ms, parsed once).
        self.global_view: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        self.global_records = 0
        self.global_alerts = Alerts()
        #: When the newest record from cx.metrics / cx.alerts, and the newest partial
        #: merged per owned channel, was written (its record timestamp, wall-clock ms):
        #: how the wallboard tells live from stale. The write time, not the read time,
        #: so a merge stage working through a backlog (or a buffer during an outage)
        #: shows its figures as old as they are.
        self.last_output_ms = 0
        self.last_merged: dict[str, int] = {}
        self.started_ms = now_ms()
        #: When the broker last acknowledged a write of ours (partials, heartbeats).
        self.broker_acked_ms = self.started_ms
        self.published: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        #: Highest partials offset this process handled per partition. Faust may hand
        #: a record over twice right after a table restore; the second time is skipped.
        self.handled: dict[tuple[str, int], int] = {}
        #: Offset of the partial that last changed each scores-table key: replaying a
        #: partial after a crash or rebalance applies only what it had not yet applied.
        self.applied: dict[str, int] = {}
        #: Live-queue records that became empty: key → wall-clock ms (see `_store_live`).
        self.empty_live: dict[str, int] = {}
        #: Channel → when a partial last carried only old events (the intake is working
        #: through a backlog): its live-queue rules hold until it settles.
        self.catching_up: dict[str, int] = {}
        self.last_evaluated: dict[str, int] = {}
        self.last_sent: dict[str, int] = {}
        # queue series too: their owners step queue rules and keep quiet queue rows live
        #: The queue series this deployment reports: others found in storage or on
        #: cx.metrics (a queue since removed from STREAM_APP_QUEUES) are not shown.
        self.reported_queues = frozenset(settings.queue_set.all_series())
        self.heartbeat_channels = (*settings.channels, ALL, *sorted(self.reported_queues))
        self.instruments = Instruments(
            self.owned_snapshots,
            topics=INPUTS,
            reasons=REASONS,
            rules=[(rule.name, rule.severity) for rule in settings.alert_rules],
            lag=lambda: self.stage.lag(),
            data_age=lambda: (now_ms() - self.data_at()) / 1000,
            build={"version": __version__, "processing_guarantee": settings.guarantee},
        )
        self.agent_view = AgentView()
        #: series (channel, queue, agent) → its partials partition (whose stream may delete its records)
        self.series_partition: dict[str, int] = {}
        self.stage = IntakeStage(settings, self.intake, self.instruments, self._partials_sent)
        self.app = self._build_app()

    # --- wiring ----------------------------------------------------------------

    def _build_app(self) -> faust.App:
        s = self.settings
        broker = s.capabilities
        app = ReadCommittedApp(
            s.app_id,
            broker=s.broker_urls,
            broker_credentials=s.faust_credentials(),
            store=MEMORY,  # the merge stage's tables: see stream_app/merge_tables.py
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
            key_serializer="raw",
            value_serializer="raw",
            # Probed (stream_app/kafka/capabilities.py): a broker that accepts short
            # sessions gets them (tansu holds a JoinGroup for half the session); one
            # record per batch where the end offsets of batches are off (else Faust
            # restores only part of a changelog).
            broker_session_timeout=broker.session_timeout_ms / 1000,
            broker_heartbeat_interval=broker.heartbeat_interval_ms / 1000,
            producer_max_batch_size=broker.producer_max_batch_size,
            # Faust's own consumer (partials and table changelogs) must not see the
            # records of aborted intake transactions: see ReadCommittedApp.
        )
        parts = s.partitions

        def raw_topic(name: str, **extra: Any) -> Any:
            return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=parts, **extra)

        self.partials_topic = raw_topic(partials_topic(s.app_id), internal=True)
        self.metrics_topic = raw_topic(METRICS_TOPIC, config={"cleanup.policy": "compact"})
        self.alerts_topic = raw_topic(ALERTS_TOPIC)
        self.agents_topic = raw_topic(
            agents_topic(s.app_id), internal=True, config={"cleanup.policy": "compact"}
        )
        self.scores = replayed_table(app, "scores", parts)
        # Alert episodes, one record per channel, written by the merge agent while it
        # handles that channel's partials: co-partitioned with the channel like `scores`.
        self.alert_states = replayed_table(app, "alert-state", parts)
        self.scores.on_recover(self._rebuild_scoreboard)
        app.on_partitions_revoked.connect(self._on_revoked)

        app.agent(self.partials_topic, name="merge")(self._merge_agent)
        app.timer(s.flush_interval_ms / 1000)(self._send_heartbeats)
        app.timer(s.snapshot_interval_ms / 1000)(self._publish_snapshots)
        app.timer(AGENTS_PUBLISH_INTERVAL_S)(self._publish_agents)
        app.task(self._follow_outputs)
        app.task(self._run_intake)
        if s.alert_webhook:
            app.task(self._run_alert_webhook)
        register_routes(app, self)
        return app

    # --- stage 1: intake (stream_app/intake_stage.py) ------------------------------

    async def _run_intake(self) -> None:
        s = self.settings
        log.info(
            "broker: %s; processing guarantee %s%s",
            s.capabilities.describe(),
            s.guarantee,
            " (auto)" if s.processing_guarantee == "auto" else "",
        )
        self.stage.stopping = False
        try:
            await self.stage.run()
        finally:
            self.stage.stopping = True

    async def _run_alert_webhook(self) -> None:
        from stream_app.alert_webhook import AlertWebhook

        await AlertWebhook(self.settings, self.instruments, self.started_ms).run()

    def waiting_for(self) -> str | None:
        """Why this worker is not ready (None: ready): the intake has no partitions
        yet or is reconnecting, or the broker acknowledged no write for a while (it
        is down: the clients retry quietly, so the intake alone would look fine)."""
        if self.stage.waiting_for is not None:
            return self.stage.waiting_for
        silent_s = (now_ms() - self.broker_acked_ms) / 1000
        if silent_s > BROKER_SILENT_S:
            return f"the broker (no write acknowledged for {silent_s:.0f} s)"
        return None

    def _partials_sent(self, ready: dict[str, ChannelPartial], now: int) -> None:
        self.broker_acked_ms = now_ms()
        for channel in ready:
            self.last_sent[channel] = now

    async def _send_partials(self, ready: dict[str, ChannelPartial], now: int) -> None:
        """Send (heartbeat) partials and wait until the broker has them."""
        deliveries = []
        for channel, partial in ready.items():
            self.last_sent[channel] = now
            deliveries.append(
                await self.partials_topic.send(key=channel.encode(), value=orjson.dumps(partial.to_json()))
            )
        if deliveries:
            await asyncio.gather(*deliveries)
            self.instruments.partials.inc(len(deliveries))
            self.broker_acked_ms = now_ms()

    async def _send_heartbeats(self) -> None:
        """An empty partial for every channel with nothing sent for a second, so its
        owner still sees the channel's stream move (alerts are stepped there)."""
        now = now_ms()
        quiet = {
            channel: ChannelPartial()
            for channel in self.heartbeat_channels
            if now - self.last_sent.get(channel, 0) >= self.settings.snapshot_interval_ms
        }
        try:
            await self._send_partials(quiet, now)
        except KafkaError as exc:  # best effort: the next tick sends them again
            log.warning("heartbeat partials not sent: %s: %s", type(exc).__name__, exc)

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
            now = now_ms()
            if received.buckets and now - max(received.buckets) > CATCHING_UP_MS:
                self.catching_up[channel] = now
            fresh = ChannelPartial()
            fresh.buckets = {
                b: agg
                for b, agg in received.buckets.items()
                if self.applied.get(f"{channel}|{b}", -1) < offset
            }
            fresh.live = {
                kind: {
                    t: n
                    for t, n in deltas.items()
                    if self.applied.get(live_key(channel, kind, t), -1) < offset
                }
                for kind, deltas in received.live.items()
            }
            fresh.live = {kind: deltas for kind, deltas in fresh.live.items() if deltas}
            windows = self.scoreboard.channel(channel)
            for bucket in self.scoreboard.apply(channel, fresh):
                key = f"{channel}|{bucket}"
                agg = windows.buckets.get(bucket) or Aggregate()
                self.scores[key] = {"p": partition, "o": offset, **agg.to_json()}
                self.applied[key] = offset
            self._store_live(channel, fresh, partition, offset)
            self.series_partition[channel] = partition
            self._delete_dropped(partition)
            now = now_ms()
            self.last_merged[channel] = max(
                self.last_merged.get(channel, 0), written_ms((event.message.timestamp or 0) * 1000, now)
            )
            # New data is evaluated at once (an alert should not wait for the next
            # heartbeat); quiet channels once a second, so `for`/`clear_for` still run.
            moved = bool(fresh.buckets) or bool(fresh.live)
            if is_agent(channel):  # agent figures: the JSON API only, no rules
                continue
            if moved or now - self.last_evaluated.get(channel, 0) >= self.settings.snapshot_interval_ms:
                await self._evaluate_alerts(channel, now)

    def _delete_dropped(self, partition: int) -> None:
        """Delete the table records of buckets retention dropped, for every series of
        this partials partition (the changelog record must go to its partition: hence
        inside that partition's stream), quiet ones included: an agent who stopped
        working leaves no records behind."""
        for channel in [c for c in self.scoreboard.dropped if self.series_partition.get(c) == partition]:
            for bucket in self.scoreboard.take_dropped(channel):
                key = f"{channel}|{bucket}"
                self.scores.pop(key, None)
                self.applied.pop(key, None)

    def _store_live(self, channel: str, fresh: ChannelPartial, partition: int, offset: int) -> None:
        """Write the live-queue chunks a partial changed to the scores table: one
        record per (kind, hour of the times), found by binary search. Per-minute records
        made far more changelog records (the embedded broker writes one per batch), and
        the crash test on it could no longer catch up in time.

        A chunk that became empty keeps its record (with the offset that emptied it)
        for `EMPTY_LIVE_KEPT_MS`: a partial replayed after a crash must still find the
        offset, or it would be applied twice. Later it is deleted (`_sweep_live`).
        """
        queue = self.scoreboard.live.get(channel)
        now = now_ms()
        for kind, deltas in fresh.live.items():
            touched = {t - t % LIVE_CHUNK_MS for t in deltas}
            for chunk in touched:
                key = live_key(channel, kind, chunk)
                times = queue.between(kind, chunk, chunk + LIVE_CHUNK_MS) if queue is not None else {}
                self.scores[key] = {"p": partition, "o": offset, "t": {str(t): n for t, n in times.items()}}
                self.applied[key] = offset
                if times:
                    self.empty_live.pop(key, None)
                else:
                    self.empty_live[key] = now
        self._sweep_live(channel, now)

    def _sweep_live(self, channel: str, now: int) -> None:
        """Delete the channel's live-queue records that have been empty for long enough."""
        prefix = f"{channel}|"
        for key, since in list(self.empty_live.items()):
            if key.startswith(prefix) and now - since > EMPTY_LIVE_KEPT_MS:
                del self.empty_live[key]
                self.scores.pop(key, None)
                self.applied.pop(key, None)

    async def _rebuild_scoreboard(self) -> None:
        """Rebuild windows from the scores table for the partitions this worker owns now.

        Faust's memory store keeps keys written live after their partition is revoked
        (it forgets only recovered ones), so records are filtered by their partition.
        """
        board = Scoreboard(self.timeline, now_ms(), self.settings.windows)
        applied: dict[str, int] = {}
        self.empty_live = {}
        topic = self.partials_topic.get_topic_name()
        owned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}
        for key, value in list(self.scores.items()):
            if value.get("p") not in owned:
                continue
            applied[key] = int(value.get("o", -1))
            channel, _, suffix = key.partition("|")
            self.series_partition[channel] = int(value["p"])
            if suffix.startswith(LIVE_PREFIX):
                kind = suffix.split("|")[1]
                times = {int(t): int(n) for t, n in value["t"].items()}
                if times:
                    board.live_queue(channel).apply(kind, times)
                else:
                    self.empty_live[key] = now_ms()
                continue
            if not suffix.lstrip("-").isdigit():  # a record of an older layout (the backlog count)
                continue
            partial = ChannelPartial()
            partial.buckets[int(suffix)] = Aggregate.from_json(value)
            board.apply(channel, partial)
        self.scoreboard = board
        self.applied = applied
        self.published.clear()
        log.info("scoreboard rebuilt: channels=%s", board.owned())

    def _on_revoked(self, *args: Any, **kwargs: Any) -> None:
        forget_all(self.app, (self.scores, self.alert_states))
        self.agent_view.forget_published()
        # Until recovery tells us what we own again, report nothing rather than stale figures.
        self.scoreboard = Scoreboard(self.timeline, now_ms(), self.settings.windows)
        self.applied = {}
        self.empty_live = {}
        self.handled.clear()
        self.instruments.alert_firing.clear()

    # --- outputs ------------------------------------------------------------------

    def owned_snapshots(self) -> list[dict[str, Any]]:
        """The snapshots of the series this worker owns and reports (a queue since
        removed from STREAM_APP_QUEUES keeps its stored figures, unreported, until its
        contacts' next events move them to `other` or they age out)."""
        self.scoreboard.advance(now_ms())
        return [
            snap
            for snap in self.scoreboard.snapshots()
            if not is_queue(snap["channel"]) or snap["channel"] in self.reported_queues
        ]

    def all_snapshots(self) -> dict[tuple[str, str], tuple[dict[str, Any], int]]:
        """Every channel's snapshots with the wall-clock ms their data last moved.

        Other workers' channels come from cx.metrics; this worker's own are live.
        """
        view = dict(self.global_view)
        for snap in self.owned_snapshots():
            channel = snap["channel"]
            view[(channel, snap["window"])] = (snap, self.last_merged.get(channel, 0))
        return view

    def scores_for(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """`/api/v1/scores`: snapshots as users see them (`queues.public`), filtered by
        `channel`, `window`, and `queue` (a name) or `by=queue` (every queue); without
        either, channel snapshots only. ValueError: a filter that cannot be met."""
        self._check_queue(query.get("queue") or None, query.get("by") == "queue")
        return [public(snap) for snap in select_snapshots(self.all_snapshots(), query)]

    def _check_queue(self, queue: str | None, by_queue: bool = False) -> None:
        """ValueError for queue figures asked of a deployment without queues, or for a
        queue it does not report (its contacts are under `other`)."""
        if (queue is not None or by_queue) and not self.settings.queues:
            raise ValueError("queue figures need STREAM_APP_QUEUES (no queue is reported)")
        if queue is not None and PREFIX + queue not in self.reported_queues:
            raise ValueError(
                f"{queue!r} is not a reported queue (STREAM_APP_QUEUES: {', '.join(self.settings.queues)};"
                f" every other queue is reported as {OTHER!r})"
            )

    def data_at(self) -> int:
        """Wall-clock ms the newest data this worker shows was written (merged partials,
        cx.metrics, cx.alerts); its start time before any."""
        return max([self.last_output_ms, *self.last_merged.values()]) or self.started_ms

    def board(
        self, window: str, channels: list[str], by: str = "channel", queues: list[str] | None = None
    ) -> dict[str, Any]:
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
            min_sample=self.settings.min_sample,
            rules=self.settings.alert_rules,
            by=by,
            queues=queues,
        )

    async def _publish_snapshots(self) -> None:
        now = now_ms()
        for snap in self.owned_snapshots():
            key = (snap["channel"], snap["window"])
            last = self.published.get(key)
            if last and same_scores(last[1], snap) and now - last[0] < HEARTBEAT_MS:
                continue
            self.published[key] = (now, snap)
            await self.metrics_topic.send(key=f"{key[0]}/{key[1]}".encode(), value=orjson.dumps(public(snap)))

    async def _publish_agents(self) -> None:
        """The window aggregates of the agent series this worker owns, to `<app_id>-agents`."""
        self.scoreboard.advance(now_ms())

        async def send(key: bytes, value: bytes | None) -> None:
            await self.agents_topic.send(key=key, value=value)

        await self.agent_view.publish(self.scoreboard.agent_windows(), send)

    def agents_for(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """`/api/v1/agents?window=&queue=`; ValueError names a query that cannot be met
        (agent figures off: an empty list would read as "no agent active")."""
        if self.settings.agent_figures != "on":
            raise ValueError("agent figures are off: start the workers with STREAM_APP_AGENT_FIGURES=on")
        if query.get("channel"):
            raise ValueError("agents are listed overall or per queue (queue=), not per channel")
        windows = self.settings.windows
        window = query.get("window") or ("1h" if "1h" in windows else windows[0])
        if window not in windows:
            raise ValueError(f"unknown window {window!r} (reported: {', '.join(windows)})")
        queue = query.get("queue") or None
        self._check_queue(queue)
        self.scoreboard.advance(now_ms())
        return self.agent_view.query(self.scoreboard.agent_windows(), window, queue)

    async def _evaluate_alerts(self, channel: str, now: int) -> None:
        """Step every rule for one owned channel (inside its partials stream); publish changes."""
        self.last_evaluated[channel] = now
        self.scoreboard.advance(now)
        stored: dict[str, alerts.State] = self.alert_states.get(channel) or {}
        states = dict(stored)
        windows = self.scoreboard.views(channel)
        live = self.scoreboard.figures(channel)
        settled = now - self.catching_up.get(channel, -LIVE_SETTLE_MS) >= LIVE_SETTLE_MS
        messages = alerts.evaluate(self.settings.alert_rules, channel, windows, live, states, now, settled)
        if states != stored:
            self.alert_states[channel] = states
        for message in messages:
            record_key = f"{message['rule']}/{channel}/{message['window']}".encode()
            # cx.alerts is shared by every deployment on the broker: the header says whose
            await self.alerts_topic.send(
                key=record_key,
                value=orjson.dumps(message),
                headers={"x-app-id": self.settings.app_id.encode()},
            )
            self.instruments.alerts.labels(message["rule"], message["severity"], message["state"]).inc()
            log.warning("alert %s: %s", message["state"], message["summary"])
        configured = {f"{r.name}/{r.window}" for r in self.settings.alert_rules}
        for rule_window, state in states.items():
            if rule_window not in configured:  # a rule since removed from the rules file
                continue
            rule, _, window = rule_window.partition("/")
            firing = state["s"] in ("firing", "clearing")
            self.instruments.alert_firing.set(rule, channel, window, firing)

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
            agents_name = agents_topic(self.settings.app_id)
            tps = [
                *(await partitions_of(consumer, METRICS_TOPIC)),
                *(await partitions_of(consumer, ALERTS_TOPIC)),
                *(await partitions_of(consumer, agents_name)),
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            async for record in consumer:
                if record.topic == agents_name:
                    self.agent_view.record(record.key, record.value)
                    continue
                written = written_ms(record.timestamp or 0, now_ms())
                self.last_output_ms = max(self.last_output_ms, written)
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
                    self.global_alerts.record(internal(value))
                elif record.key is not None and (as_of_ms := snapshot_time_ms(value)) is not None:
                    # a queue name may hold "/"; a window never does
                    channel, _, window = record.key.decode(errors="replace").rpartition("/")
                    if is_queue(channel) and channel not in self.reported_queues:
                        continue  # a queue this deployment does not report (any more)
                    self.global_view[(channel, window)] = (internal(value), as_of_ms)
                    self.global_records += 1
        finally:
            await consumer.stop()


#: Scores-table keys of the live queue: "<channel>|live|<kind>|<hour>".
LIVE_PREFIX = "live|"
LIVE_CHUNK_MS = 3_600_000
#: A partial whose newest event-time bucket is older than this came from an intake
#: working through old events (a backlog after a restart or an outage).
CATCHING_UP_MS = 120_000
#: Live-queue rules hold until no such partial came for this long: until then a chat
#: whose agent's join is still in the backlog looks as if it had waited all along.
LIVE_SETTLE_MS = 30_000
#: How long an emptied live-queue record is kept before it is deleted: far longer
#: than the partials consumer takes to commit (every second).
EMPTY_LIVE_KEPT_MS = 3_600_000


def live_key(channel: str, kind: str, at_ms: int) -> str:
    """The scores-table key holding the live-queue times of `kind` in the hour of `at_ms`."""
    return f"{channel}|{LIVE_PREFIX}{kind}|{at_ms - at_ms % LIVE_CHUNK_MS}"


def written_ms(timestamp_ms: float, now: int) -> int:
    """When a record was written: its timestamp (ms), never later than `now` (the
    writer's clock may run ahead of ours); `now` when it carries none (<= 0)."""
    return min(now, int(timestamp_ms)) if timestamp_ms > 0 else now
