"""Create the topics the service owns, and refuse inputs it cannot co-partition."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, TopicAlreadyExistsError

from stream_app.config import ConfigError, Settings
from stream_app.core.intake import INPUTS
from stream_app.internal_topics import (
    MERGE_TABLES,
    agents_topic,
    changelog_topic,
    partials_topic,
    probe_topic,
    repartition_topic,
    table_changelog_topic,
)

log = logging.getLogger("stream_app.topics")
METRICS_TOPIC = "cx.metrics"
ALERTS_TOPIC = "cx.alerts"
OUTPUTS: dict[str, dict[str, str]] = {
    METRICS_TOPIC: {"cleanup.policy": "compact"},
    ALERTS_TOPIC: {},
    "cx.deadletter": {},
}


async def _refused_credentials(settings: Settings) -> str | None:
    """Why the broker refused our SASL login, if it did (aiokafka only logs it)."""
    if "SASL" not in settings.security_protocol:
        return None
    host, port = settings.first_broker
    try:
        conn = await create_conn(host, port, **settings.kafka_client_options())
    except SaslAuthenticationFailed as exc:
        return str(exc).split(": ", 1)[-1]
    except Exception:  # unreachable, TLS trouble...: the caller's retry reports it
        return None
    conn.close()
    return None


async def ensure_topics(settings: Settings, attempts: int = 30) -> None:
    """Create missing topics with STREAM_APP_PARTITIONS partitions (retrying while the broker boots).

    Per-ticket/chat state lives in tables partitioned like their input topic, so
    an input topic with another partition count is a configuration error.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        client_id=f"{settings.app_id}-setup",
        **settings.kafka_client_options(),
    )
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            refused = await _refused_credentials(settings)
            if refused:
                raise ConfigError(
                    f"STREAM_APP_SASL_USERNAME/STREAM_APP_SASL_PASSWORD: the broker refused them"
                    f" ({settings.sasl_mechanism} as {settings.sasl_username!r}): {refused}"
                ) from None
            if attempt == attempts - 1:
                raise ConfigError(
                    f"STREAM_APP_BROKER={','.join(settings.broker)}: no Kafka broker answers there"
                ) from None
            await asyncio.sleep(1)
    try:
        wanted: dict[str, dict[str, str]] = {name: {} for name in INPUTS} | OUTPUTS
        for _, kind, _ in INPUTS.values():  # intake state and re-keying, co-partitioned with its input
            wanted[changelog_topic(settings.app_id, kind)] = {"cleanup.policy": "compact"}
            wanted[repartition_topic(settings.app_id, kind)] = {}
        # The merge stage's topics too (a consumer that subscribes before a new
        # topic's partitions are in the metadata does not see them until its next
        # refresh, 5 minutes later).
        wanted[partials_topic(settings.app_id)] = {}
        wanted[agents_topic(settings.app_id)] = {"cleanup.policy": "compact"}
        for table in MERGE_TABLES:
            wanted[table_changelog_topic(settings.app_id, table)] = {"cleanup.policy": "compact"}
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, settings.partitions, settings.replication_factor, topic_configs=dict(configs))
            for name, configs in wanted.items()
            if name not in existing
        ]
        if probe_topic(settings.app_id) not in existing:  # two records per start, kept an hour
            missing.append(
                NewTopic(
                    probe_topic(settings.app_id),
                    1,
                    settings.replication_factor,
                    topic_configs={"retention.ms": "3600000"},
                )
            )
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
            await _until_led(admin, [t.name for t in missing])
        co_partitioned = [
            *INPUTS,
            *(repartition_topic(settings.app_id, kind) for _, kind, _ in INPUTS.values()),
        ]
        described = await admin.describe_topics(co_partitioned)
        for topic in described:
            count = len(topic.get("partitions", []))
            if count and count != settings.partitions:
                raise ConfigError(
                    f"STREAM_APP_PARTITIONS={settings.partitions} but topic {topic['topic']} has "
                    f"{count} partitions; set STREAM_APP_PARTITIONS={count}"
                )
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Wait (up to 30 s) until every new topic has all its partitions, each with a
    leader: a new cluster takes seconds to get there, and a client that reads the
    metadata before then keeps a topic without partitions until its next refresh."""
    for _ in range(150):
        described = await admin.describe_topics(topics)
        if all(
            topic.get("partitions") and all(p.get("leader", -1) >= 0 for p in topic["partitions"])
            for topic in described
        ):
            return
        await asyncio.sleep(0.2)
    log.warning("topics %s have no leader for every partition after 30 s", topics)


async def partitions_of(consumer: Any, topic: str, timeout_s: float = 30.0) -> list[TopicPartition]:
    """All partitions of `topic`, for a consumer that assigns instead of subscribing.

    aiokafka keeps metadata only for topics it knows about; registering the topic
    with its client and forcing an update is the documented-by-code way there.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topic {topic} has no partitions after {timeout_s} s")
        consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)
