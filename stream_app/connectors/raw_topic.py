"""Amazon Connect records already in Kafka (a raw topic the user's own pipeline
fills from EventBridge or the Kinesis contact-record stream) → §3 events.

A thin shell around `amazon_connect.map_record`: consume, map, produce, then
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
from stream_app.connectors.amazon_connect import map_record
from stream_app.connectors.mapped import Ignored, Unmappable
from stream_app.connectors.settings import ConnectSettings

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
    overrides = connect.channels.get("amazon_connect", {})
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            sent = []
            for records in batches.values():
                for record in records:
                    try:
                        mapped = map_record(orjson.loads(record.value or b""), overrides)
                    except (orjson.JSONDecodeError, Unmappable) as exc:
                        detail = str(exc) if isinstance(exc, Unmappable) else "the record is not JSON"
                        headers = [
                            ("x-error-reason", b"unmappable"),
                            ("x-error-detail", detail.encode()),
                            ("x-source-topic", record.topic.encode()),
                            ("x-source-partition", str(record.partition).encode()),
                            ("x-source-offset", str(record.offset).encode()),
                        ]
                        sent.append(
                            await producer.send(
                                DEADLETTER_TOPIC, record.value, key=record.key, headers=headers
                            )
                        )
                        continue
                    if isinstance(mapped, Ignored):
                        continue
                    for event in mapped:
                        sent.append(
                            await producer.send(
                                event.topic, orjson.dumps(event.event), key=event.key.encode()
                            )
                        )
            if sent:
                await asyncio.gather(*sent)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
