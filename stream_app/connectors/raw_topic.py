"""Amazon Connect records already in Kafka (a raw topic the user's own pipeline
fills from EventBridge or the Kinesis contact-record stream) → §3 events.

A thin shell around the webhook route's mapping (`webhook.map_body`, which calls
`amazon_connect.map_record`): consume, map, produce, then
commit the raw offsets (at least once; the stable `event_id`s make a replay a
set of duplicates). A record that can never be mapped is dead-lettered with
reason `unmappable` and the usual `x-source-*` headers; nothing stops the loop.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream_app.checkpoint import DEADLETTER_TOPIC
from stream_app.config import Settings
from stream_app.connectors.settings import ConnectSettings
from stream_app.connectors.webhook import map_body, unmappable_headers

log = logging.getLogger("stream_app.connect")


async def run_raw_topic(settings: Settings, connect: ConnectSettings, producer: AIOKafkaProducer) -> None:
    topic = connect.amazon_connect_topic
    assert topic is not None
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=f"{settings.app_id}-connect-amazon-connect",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            sent = []
            for records in batches.values():
                for record in records:
                    decision = map_body("amazon_connect", record.value or b"", connect)
                    if decision.outcome in ("invalid_json", "unmappable"):
                        # Unlike a webhook's junk, a record on the user's own topic is theirs: kept.
                        detail = (
                            "the record is not JSON"
                            if decision.outcome == "invalid_json"
                            else decision.detail
                        )
                        origin = [
                            ("x-source-topic", record.topic.encode()),
                            ("x-source-partition", str(record.partition).encode()),
                            ("x-source-offset", str(record.offset).encode()),
                        ]
                        headers = unmappable_headers(detail, origin)
                        sent.append(
                            await producer.send(
                                DEADLETTER_TOPIC, record.value, key=record.key, headers=headers
                            )
                        )
                    for event in decision.records:
                        value = orjson.dumps(event.event)
                        sent.append(await producer.send(event.topic, value, key=event.key.encode()))
            if sent:
                await asyncio.gather(*sent)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
