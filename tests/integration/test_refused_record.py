"""A record the broker refuses aborts its whole batch (issue 11, case 7).

The worker's survey state changelog is made to refuse every state record
(max.message.bytes 150: a survey's state is larger, a transaction marker smaller),
then surveys arrive: the batch's transaction must not commit (no input offsets,
no counts, no figures), the worker keeps retrying and stays up, and once the topic
takes records again every survey is counted exactly once.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream_app.intake_stage import changelog_topic, intake_group
from tests.factories import encode, survey
from tests.integration.harness import RUN, channel, metric_value, produce, run_sync

pytestmark = pytest.mark.integration
SURVEYS = 50


async def set_max_message_bytes(bootstrap: str, topic: str, size: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(size)})
        for response in await admin.alter_configs([resource]):
            for error_code, message, *_ in response.resources:
                assert error_code == 0, f"alter_configs {topic}: {error_code} {message}"
    finally:
        await admin.close()


async def committed_input_offsets(bootstrap: str, app_id: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(intake_group(app_id))
        return {tp: meta.offset for tp, meta in found.items() if tp.topic == "cx.surveys"}
    finally:
        await admin.close()


def test_a_refused_record_commits_nothing_and_loses_nothing(bootstrap: str, start_worker: Any) -> None:
    if os.environ.get("CX_TEST_BROKER_KIND") == "tansu":
        pytest.skip("the embedded broker (tansu) has no AlterConfigs to make a topic refuse records")
    app_id = f"cx-refused-{RUN}"
    worker = start_worker(app_id, channel("probe"))
    ch = channel("refused")
    accepted = 'cx_events_total{outcome="accepted",topic="cx.surveys"}'
    # a fresh group reads the shared topics from the start (earlier tests' unkeyed
    # records among them, forwarded through the repartition topic): let it settle first
    before = worker.settle(quiet=3.0, timeout=300).get(accepted, 0.0)
    offsets_before = run_sync(committed_input_offsets(bootstrap, app_id))
    run_sync(set_max_message_bytes(bootstrap, changelog_topic(app_id, "survey"), 150))
    try:
        now = int(time.time() * 1000)
        records = [survey("csat", 5 if i % 2 else 1, now - i, ch) for i in range(SURVEYS)]
        run_sync(produce(bootstrap, [("cx.surveys", r["response_id"].encode(), encode(r)) for r in records]))
        time.sleep(8)  # several attempts: each must abort
        assert worker.running()
        assert worker.metrics().get(accepted, 0.0) == before
        assert metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="15m") is None
        assert run_sync(committed_input_offsets(bootstrap, app_id)) == offsets_before
        assert "MessageSizeTooLarge" in worker.log_path.read_text(errors="replace")
    finally:
        run_sync(set_max_message_bytes(bootstrap, changelog_topic(app_id, "survey"), 1_048_588))
    worker.wait_until(
        lambda: metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="15m") == SURVEYS,
        timeout=120,
        what="every survey counted once the topic takes records again",
    )
    time.sleep(2)  # nothing counted twice either
    samples = worker.metrics()
    assert metric_value(samples, "cx_csat_responses", channel=ch, window="15m") == SURVEYS
    assert metric_value(samples, "cx_csat_ratio", channel=ch, window="15m") == 0.5
    assert samples[accepted] >= before + SURVEYS
