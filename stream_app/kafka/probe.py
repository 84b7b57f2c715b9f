"""Probe the broker at start-up (what `capabilities.BrokerCapabilities` records)
and settle the processing guarantee in force.

`probe()` asks the broker; `resolve_guarantee()` turns STREAM_APP_PROCESSING_GUARANTEE
(`auto`, `exactly_once`, `at_least_once`) and the answer into the guarantee in
force, or a configuration error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import replace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest

from stream_app.config import ConfigError, Settings
from stream_app.internal_topics import probe_topic
from stream_app.kafka.capabilities import SHORT_SESSION_MS, BrokerCapabilities

log = logging.getLogger("stream_app.kafka")

#: How long an undecided transactional InitProducerId may take (a new Apache Kafka
#: cluster creates `__transaction_state` on first use: seconds, on a slow machine tens).
TRANSACTIONS_DEADLINE_S = 60.0
INVALID_SESSION_TIMEOUT = 26


def resolve_guarantee(requested: str, capabilities: BrokerCapabilities) -> str:
    """The processing guarantee in force: `exactly_once` or `at_least_once`.

    Raises ConfigError when `exactly_once` is asked of a broker without transactions.
    """
    if requested == "at_least_once":
        return requested
    if capabilities.transactions:
        return "exactly_once"
    if requested == "exactly_once":
        because = f" ({capabilities.no_transactions_because})" if capabilities.no_transactions_because else ""
        raise ConfigError(
            "STREAM_APP_PROCESSING_GUARANTEE=exactly_once needs Kafka transactions, which this broker"
            f" does not provide{because}; use auto or at_least_once"
        )
    return "at_least_once"


async def prepare_broker(settings: Settings) -> Settings:
    """Create the worker's topics, probe the broker, settle the guarantee: the
    settings a worker runs with. Raises ConfigError (one line) where it cannot run."""
    from stream_app.topics import ensure_topics

    await ensure_topics(settings)
    found = await probe(settings, wait_for_transactions=settings.processing_guarantee == "exactly_once")
    resolve_guarantee(settings.processing_guarantee, found)
    return replace(settings, capabilities=found)


async def probe(settings: Settings, wait_for_transactions: bool) -> BrokerCapabilities:
    """Ask the broker (its topics must exist: see `topics.ensure_topics`).

    `wait_for_transactions`: keep waiting (logging every 10 s) while the transaction
    coordinator is not available yet, instead of deciding after TRANSACTIONS_DEADLINE_S
    (STREAM_APP_PROCESSING_GUARANTEE=exactly_once: it is not given up silently).
    """
    options = {"bootstrap_servers": settings.bootstrap, **settings.kafka_client_options()}
    # aiokafka logs a refused InitProducerId as an error: here it is an answer.
    sender = logging.getLogger("aiokafka.producer.sender")
    level = sender.level
    sender.setLevel(logging.CRITICAL)
    try:
        idempotence, _ = await _init_producer_id(options, None, 15.0, False)
        transactions, why = await _init_producer_id(
            options,
            f"{settings.app_id}-probe-{settings.instance}",
            TRANSACTIONS_DEADLINE_S,
            wait_for_transactions,
        )
    finally:
        sender.setLevel(level)
    return BrokerCapabilities(
        transactions=transactions,
        idempotence=idempotence,
        exact_end_offsets=await _exact_end_offsets(options, probe_topic(settings.app_id)),
        short_sessions=await _accepts_short_sessions(settings, f"{settings.app_id}-probe"),
        no_transactions_because=why,
    )


async def _init_producer_id(
    options: dict[str, Any], transactional_id: str | None, deadline_s: float, forever: bool
) -> tuple[bool, str]:
    """Does the broker hand out a producer id (idempotent or transactional)?"""
    producer = AIOKafkaProducer(
        enable_idempotence=True, transactional_id=transactional_id, acks="all", **options
    )
    what = "a transactional producer id" if transactional_id else "an idempotent producer id"
    started = time.monotonic()
    task = asyncio.ensure_future(producer.start())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=10.0)
            if done:
                task.result()
                return True, ""
            waited = time.monotonic() - started
            if not forever and waited >= deadline_s:
                return False, f"no answer to InitProducerId in {waited:.0f} s"
            log.warning("waiting for the broker to hand out %s (%.0f s so far)", what, waited)
    except KafkaError as exc:
        return False, f"InitProducerId: {type(exc).__name__}"
    finally:
        task.cancel()
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(producer.stop(), 10.0)


#: Attempts of the end-offset probe when another writer's records land in between.
END_OFFSET_ATTEMPTS = 5


async def _exact_end_offsets(options: dict[str, Any], topic: str) -> bool:
    """Send one batch of two records; does the end offset move by two?

    Workers of one deployment started together probe the same partition: another
    worker's batch landing between our send and our end-offset read moved the end
    by four on Apache Kafka, and the probe answered "no" (seen in the rebalance test:
    Faust's producer then sent one record per batch). The answer is exact (+2) or
    tansu's (+1, the batch's base offset + 1); anything else means another writer
    came in between, and the probe is repeated after a random pause."""
    producer = AIOKafkaProducer(acks="all", **options)
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **options)
    await producer.start()
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        moved = 0
        for attempt in range(END_OFFSET_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0.05, 0.5))  # out of step with the other writer
            batch = producer.create_batch()
            for value in (b"probe", b"probe"):
                batch.append(key=None, value=value, timestamp=None)
            sent = await (await producer.send_batch(batch, topic, partition=0))
            moved = (await consumer.end_offsets([tp]))[tp] - sent.offset
            if moved in (1, 2):
                break
        return moved == 2
    finally:
        await producer.stop()
        await consumer.stop()


async def _accepts_short_sessions(settings: Settings, group: str) -> bool:
    """JoinGroup with a 2 s session on a throw-away group: refused where the broker's
    minimum session is longer (Apache Kafka: 6 s)."""
    host, port = settings.first_broker
    conn = await create_conn(host, port, **settings.kafka_client_options())
    try:
        found = await conn.send(FindCoordinatorRequest(group, 0))
        if found.error_code:
            return False
        if (found.host, found.port) != (host, port):
            conn.close()
            conn = await create_conn(found.host, found.port, **settings.kafka_client_options())
        joined = await asyncio.wait_for(
            conn.send(
                JoinGroupRequest(
                    group, SHORT_SESSION_MS, SHORT_SESSION_MS, "", None, "consumer", [("range", b"")]
                )
            ),
            10.0,
        )
        if joined.error_code == INVALID_SESSION_TIMEOUT:
            return False
        if joined.error_code == 0 and joined.member_id:
            await conn.send(LeaveGroupRequest(group, joined.member_id))
        # Accepted (or asked to rejoin with a member id, which Kafka does only after the check).
        return joined.error_code in (0, 79)
    except (KafkaError, TimeoutError):
        return False
    finally:
        conn.close()
