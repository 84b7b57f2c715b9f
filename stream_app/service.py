"""The worker: both stages, the outputs and the HTTP side (Faust runs the web
server, the timers and the output producers).

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
and input offsets. Stage 2 (`merge_stage.py`, plain aiokafka too) owns each
channel on exactly one worker and keeps its event-time buckets in the `scores`
table, each record with the partials offset it reflects, committed with the
partials offsets, so a restarted or rebalanced worker rebuilds its windows from
the changelog and applies no partial twice.
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

from stream_app import __version__
from stream_app.agent_view import PUBLISH_INTERVAL_S as AGENTS_PUBLISH_INTERVAL_S
from stream_app.agent_view import AgentView, agents_topic
from stream_app.config import Settings
from stream_app.core.intake import INPUTS, REASONS
from stream_app.core.partial_codec import encode_partial
from stream_app.core.queues import OTHER, PREFIX, internal, is_queue, public, select_snapshots
from stream_app.core.scoreboard import ALL, ChannelPartial, Scoreboard
from stream_app.core.snapshot import same_scores
from stream_app.http_routes import register_routes
from stream_app.intake_stage import IntakeStage, now_ms, partials_topic
from stream_app.merge_stage import MergeStage, written_ms
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


def _published(delivery: asyncio.Future[Any]) -> None:
    """Log a snapshot the broker did not take (the next second's publish sends it again)."""
    if not delivery.cancelled() and delivery.exception() is not None:
        log.warning("cx.metrics snapshot not published: %s", delivery.exception())


class CxService:
    """Builds the Faust app for one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.intake = settings.intake()
        self.timeline = self.intake.timeline
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
        self.started_ms = now_ms()
        #: When the broker last acknowledged a write of ours (partials, heartbeats).
        self.broker_acked_ms = self.started_ms
        self.published: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.last_sent: dict[str, int] = {}
        # queue series too: their owners step queue rules and keep quiet queue rows live
        #: The queue series this deployment reports: others found in storage or on
        #: cx.metrics (a queue since removed from STREAM_APP_QUEUES) are not shown.
        self.reported_queues = frozenset(settings.queue_set.all_series())
        self.heartbeat_channels = (*settings.channels, ALL, *sorted(self.reported_queues))
        #: The scoreboard's snapshot list and the reported ones in it (`owned_snapshots`).
        self._owned: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
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
        self.stage = IntakeStage(settings, self.intake, self.instruments, self._partials_sent)
        self.merge = MergeStage(settings, self.instruments, self._forget_published)
        self.app = self._build_app()

    # --- wiring ----------------------------------------------------------------

    def _build_app(self) -> faust.App:
        s = self.settings
        broker = s.capabilities
        app = faust.App(
            s.app_id,
            broker=s.broker_urls,
            broker_credentials=s.faust_credentials(),
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
        app.timer(s.flush_interval_ms / 1000)(self._send_heartbeats)
        app.timer(s.snapshot_interval_ms / 1000)(self._publish_snapshots)
        app.timer(AGENTS_PUBLISH_INTERVAL_S)(self._publish_agents)
        app.task(self._follow_outputs)
        app.task(self._run_intake)
        app.task(self._run_merge)
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

    # --- stage 2: merge per channel (stream_app/merge_stage.py) --------------------

    async def _run_merge(self) -> None:
        self.merge.stopping = False
        try:
            await self.merge.run()
        finally:
            self.merge.stopping = True

    @property
    def scoreboard(self) -> Scoreboard:
        """The windows of the series this worker owns (the merge stage's)."""
        return self.merge.scoreboard

    @property
    def last_merged(self) -> dict[str, int]:
        return self.merge.last_merged

    def _forget_published(self) -> None:
        """The owned series changed: publish every snapshot again, forget agent rows."""
        self.published.clear()
        self.agent_view.forget_published()

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
                await self.partials_topic.send(key=channel.encode(), value=encode_partial(partial))
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

    # --- outputs ------------------------------------------------------------------

    def owned_snapshots(self) -> list[dict[str, Any]]:
        """The snapshots of the series this worker owns and reports (a queue since
        removed from STREAM_APP_QUEUES is not reported; the intake moves its contacts
        to `other` after a restart, `Intake.relabel_keys`). The same list object while
        the scoreboard's snapshots are unchanged (`/metrics` keeps its text for it)."""
        self.scoreboard.advance(now_ms())
        built = self.scoreboard.snapshots()
        if self._owned is None or self._owned[0] is not built:
            self._owned = (
                built,
                [
                    snap
                    for snap in built
                    if not is_queue(snap["channel"]) or snap["channel"] in self.reported_queues
                ],
            )
        return self._owned[1]

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
        if query.get("window"):
            self.check_window(query["window"])
        return [public(snap) for snap in select_snapshots(self.all_snapshots(), query)]

    def check_window(self, window: str) -> None:
        """ValueError for a window this deployment does not report (an empty answer
        would read as "no data")."""
        windows = self.settings.windows
        if window not in windows:
            raise ValueError(f"unknown window {window!r} (reported: {', '.join(windows)})")

    def check_board(self, by: str, queues: list[str]) -> None:
        """The wallboard's `by=queue` and `queues=` (a team's screen): ValueError for
        queue rows without STREAM_APP_QUEUES or a queue not reported, so a misspelt
        team screen is refused rather than showing only the centre's `all` row."""
        self._check_queue(None, by == "queue")
        for queue in queues:
            self._check_queue(queue)

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
        """Each owned series × window to `cx.metrics` once a second while it changes
        (and every HEARTBEAT_MS when it does not). Straight to the Faust app's
        aiokafka producer: a `Topic.send` (Faust's message channel and callbacks)
        took about twice the samples per message in py-spy, and there is one per
        series and window. A failed delivery is logged (`_published`)."""
        now = now_ms()
        producer = self.app.producer
        for snap in self.owned_snapshots():
            key = (snap["channel"], snap["window"])
            last = self.published.get(key)
            if last and same_scores(last[1], snap) and now - last[0] < HEARTBEAT_MS:
                continue
            self.published[key] = (now, snap)
            delivery = await producer.send(
                METRICS_TOPIC, f"{key[0]}/{key[1]}".encode(), orjson.dumps(public(snap)), None, None, None
            )
            asyncio.ensure_future(delivery).add_done_callback(_published)

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
        self.check_window(window)
        queue = query.get("queue") or None
        self._check_queue(queue)
        self.scoreboard.advance(now_ms())
        return self.agent_view.query(self.scoreboard.agent_windows(), window, queue)

    async def _follow_outputs(self) -> None:
        """Global view for the API and wallboard: every worker reads all of `cx.metrics`
        and `cx.alerts` (no group), so any worker can show every channel."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            # alerts are written in the merge stage's transactions: a fenced worker's never count
            isolation_level="read_committed",
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
