"""`stream-app connect`: the HTTP receiver (a thin shell around `webhook.decide`).

Routes: `POST /webhooks/zendesk`, `POST /webhooks/intercom`,
`POST /webhooks/amazon-connect` (EventBridge API destinations), `GET /healthz`,
`GET /metrics`. Nothing else is served: every other path or method is 404/405.

A request is answered 200 only after Kafka acknowledged every record it mapped
to (an idempotent producer where the broker has one, `acks=all`), so a broker
outage makes the source retry (503) instead of losing events; the retry maps to
the same `event_id`s and the worker drops what already arrived. Bodies over
STREAM_APP_CONNECT_MAX_BODY get 413, more than STREAM_APP_CONNECT_RATE requests
per second from one source get 429 with Retry-After. Secrets are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, generate_latest

from stream_app.checkpoint import DEADLETTER_TOPIC as DEADLETTER
from stream_app.config import Settings
from stream_app.connectors.mapped import Mapped
from stream_app.connectors.settings import SOURCES, ConnectSettings
from stream_app.connectors.webhook import Decision, decide, unmappable_headers

log = logging.getLogger("stream_app.connect")

#: How long a request waits for Kafka's acknowledgements before answering 503
#: (Intercom gives a webhook 5 s, Zendesk 12 s).
ACK_TIMEOUT_S = 4.0
ROUTES = {"zendesk": "zendesk", "intercom": "intercom", "amazon-connect": "amazon_connect"}


class TokenBucket:
    """`rate` requests per second with bursts of up to `rate`; `take()` → seconds to wait (0: go)."""

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.tokens = float(rate)
        self.at = time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Receiver:
    def __init__(self, settings: Settings, connect: ConnectSettings, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.connect = connect
        self.producer = producer
        self.buckets = {source: TokenBucket(connect.rate) for source in SOURCES}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cx_connector_requests",
            "Webhook requests by source and outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.events = Counter(
            "cx_connector_events", "§3 events produced by source", ["source"], registry=self.registry
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.connect.max_body)
        app.router.add_post("/webhooks/{source}", self.webhook)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    async def webhook(self, request: web.Request) -> web.Response:
        source = ROUTES.get(request.match_info["source"])
        if source is None:
            raise web.HTTPNotFound()
        wait = self.buckets[source].take()
        if wait:
            self.requests.labels(source, "rate_limited").inc()
            return web.json_response(
                {"error": "rate limited"}, status=429, headers={"Retry-After": str(max(1, round(wait)))}
            )
        if request.content_length is not None and request.content_length > self.connect.max_body:
            self.requests.labels(source, "too_large").inc()
            return web.json_response({"error": "body too large"}, status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.requests.labels(source, "too_large").inc()
            return web.json_response({"error": "body too large"}, status=413)
        decision = decide(source, request.headers, body, self.connect)
        try:
            await asyncio.wait_for(self._produce(source, body, decision), ACK_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            self.requests.labels(source, "broker_unavailable").inc()
            log.warning(
                "%s: Kafka did not acknowledge in time (%s): answering 503", source, type(exc).__name__
            )
            return web.json_response({"error": "broker unavailable, retry"}, status=503)
        self.requests.labels(source, decision.outcome).inc()
        self.events.labels(source).inc(len(decision.records))
        answer: dict[str, Any] = {"outcome": decision.outcome, "events": len(decision.records)}
        if decision.detail:
            answer["detail"] = decision.detail
        return web.json_response(answer, status=decision.status)

    async def _produce(self, source: str, body: bytes, decision: Decision) -> None:
        sent = [self._send(record) for record in decision.records]
        if decision.deadletter:
            headers = unmappable_headers(decision.detail, [("x-source-topic", f"connect:{source}".encode())])
            sent.append(self.producer.send_and_wait(DEADLETTER, body, headers=headers))
        if sent:
            await asyncio.gather(*sent)

    async def _send(self, record: Mapped) -> Any:
        return await self.producer.send_and_wait(
            record.topic, orjson.dumps(record.event), key=record.key.encode()
        )


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    """An idempotent producer where the broker hands out producer ids, else acks=all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap,
        enable_idempotence=settings.capabilities.idempotence,
        acks="all",
        request_timeout_ms=int(ACK_TIMEOUT_S * 1000) + 1000,
        **settings.kafka_client_options(),
    )
    await producer.start()
    return producer


async def serve(settings: Settings, connect: ConnectSettings, stop: asyncio.Event | None = None) -> None:
    """Run the receiver (and the Amazon Connect raw-topic mapper when configured) until `stop`."""
    from stream_app.connectors.raw_topic import run_raw_topic

    producer = await start_producer(settings)
    receiver = Receiver(settings, connect, producer)
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", connect.port)
    await site.start()
    mapper = None
    if connect.amazon_connect_topic:
        mapper = asyncio.ensure_future(run_raw_topic(settings, connect, producer))
    log.warning(
        "stream-app connect: listening on :%d (POST /webhooks/zendesk|intercom|amazon-connect);"
        " signatures checked for %s; idempotent producer: %s",
        connect.port,
        ", ".join(sorted(connect.secrets)) or "no source (no secret set)",
        settings.capabilities.idempotence,
    )
    print(
        f"stream-app connect: http://localhost:{connect.port}/webhooks/<zendesk|intercom|amazon-connect>",
        flush=True,
    )
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        if mapper is not None:
            mapper.cancel()
        await runner.cleanup()
        await producer.stop()
