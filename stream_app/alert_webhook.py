"""Posts every `cx.alerts` message to STREAM_APP_ALERT_WEBHOOK (e.g. a Slack incoming
webhook), apart from the pipeline so a slow or dead receiver never holds it up.

The workers share the consumer group `<app_id>-alert-webhook` on `cx.alerts`: each
message is posted by one worker, in order per rule/channel/window (a firing before
its resolved), with a timeout and retries (1 s doubling, 5 attempts), and its
offset is committed once it was delivered or given up on (counted in
`cx_alert_notifications_total{outcome}`). A message is posted at least once: a
worker that dies between the POST and the commit posts it again after restart.
A new group starts at the messages written after this worker started, so turning
the webhook on does not replay old alerts. Only this deployment's alerts are posted
(header `x-app-id`): `cx.alerts` is shared by every app id on the broker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from stream_app.config import Settings
from stream_app.core.notification import retry_after, webhook_body
from stream_app.kafka.backoff import Backoff
from stream_app.metrics import Instruments
from stream_app.topics import ALERTS_TOPIC

log = logging.getLogger("stream_app.alerts")
ATTEMPTS = 5
TIMEOUT_S = 10.0


class AlertWebhook:
    def __init__(self, settings: Settings, instruments: Instruments, started_ms: int) -> None:
        assert settings.alert_webhook is not None
        self.settings = settings
        self.url = settings.alert_webhook
        self.instruments = instruments
        self.started_ms = started_ms

    async def run(self) -> None:
        backoff = Backoff(1.0, 30.0)
        while True:
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                delay = backoff.next()
                log.warning("alert webhook: %s: %s; again in %g s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)

    async def _run_once(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=f"{self.settings.app_id}-alert-webhook",
            bootstrap_servers=self.settings.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            isolation_level="read_committed",
            session_timeout_ms=self.settings.capabilities.session_timeout_ms,
            heartbeat_interval_ms=self.settings.capabilities.heartbeat_interval_ms,
            **self.settings.kafka_client_options(),
        )
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        try:
            await consumer.start()
            consumer.subscribe([ALERTS_TOPIC], listener=_StartAtLaunch(consumer, self.started_ms))
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async for record in consumer:
                    if record.value is not None and self._ours(record.headers):
                        await self._deliver(session, record.value)
                    tp = TopicPartition(record.topic, record.partition)
                    await consumer.commit({tp: record.offset + 1})
        finally:
            await consumer.stop()

    def _ours(self, headers: Any) -> bool:
        """Written by a worker of this deployment (cx.alerts is shared by every app id
        on the broker; records without the header predate it and are posted)."""
        found = dict(headers or ())
        return "x-app-id" not in found or found["x-app-id"] == self.settings.app_id.encode()

    async def _deliver(self, session: aiohttp.ClientSession, value: bytes) -> None:
        try:
            alert = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(alert, dict):
            return
        body = orjson.dumps(webhook_body(alert))
        backoff = Backoff(1.0, 8.0)
        for attempt in range(1, ATTEMPTS + 1):
            status: int | None = None
            try:
                async with session.post(
                    self.url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("alert webhook: attempt %d: %s", attempt, type(exc).__name__)
            if status is not None and 200 <= status < 300:
                self.instruments.notifications.labels("sent").inc()
                return
            if not retry_after(status) or attempt == ATTEMPTS:
                break
            await asyncio.sleep(backoff.next())
        self.instruments.notifications.labels("failed").inc()
        log.error("alert webhook: gave up on %s (last status %s)", alert.get("alert_id"), status)


class _StartAtLaunch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions without a committed offset start at the first message written after
    this worker started (not at the topic's whole history)."""

    def __init__(self, consumer: AIOKafkaConsumer, started_ms: int) -> None:
        self.consumer = consumer
        self.started_ms = started_ms

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        fresh = [tp for tp in assigned if await self.consumer.committed(tp) is None]
        if not fresh:
            return
        found = await self.consumer.offsets_for_times({tp: self.started_ms for tp in fresh})
        ends = await self.consumer.end_offsets(fresh)
        for tp in fresh:
            at = found.get(tp)
            self.consumer.seek(tp, at.offset if at is not None else ends[tp])
