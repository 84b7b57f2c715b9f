"""Start-up creates every topic the worker subscribes to before any consumer does.

A consumer that subscribes while a new topic has no partitions in the metadata
keeps it that way until its next metadata refresh (5 minutes): on a new cluster
the merge stage then saw none of the intake's partials for 5 minutes.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from stream_app import config
from stream_app.core.intake import INPUTS
from stream_app.internal_topics import agents_topic, changelog_topic, partials_topic, repartition_topic
from stream_app.topics import ensure_topics
from tests.integration.harness import run_sync

pytestmark = pytest.mark.integration


def test_every_topic_the_worker_reads_exists_with_its_partitions_before_it_starts(bootstrap: str) -> None:
    app_id = f"cx-topics-{uuid.uuid4().hex[:6]}"
    settings = config.load({"STREAM_APP_BROKER": bootstrap, "STREAM_APP_APP_ID": app_id})
    kinds = [kind for _, kind, _ in INPUTS.values()]
    expected = [
        *INPUTS,
        "cx.metrics",
        "cx.alerts",
        partials_topic(app_id),
        agents_topic(app_id),
        f"{app_id}-scores-changelog",
        f"{app_id}-alert-state-changelog",
        *(changelog_topic(app_id, kind) for kind in kinds),
        *(repartition_topic(app_id, kind) for kind in kinds),
    ]

    async def seen_at_once() -> dict[str, int]:
        await ensure_topics(settings)
        # Listed first: a metadata request for a missing topic may auto-create it.
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            listed = set(await admin.list_topics())
            described = await admin.describe_topics([t for t in expected if t in listed])
        finally:
            await admin.close()
        led = {
            d["topic"]: sum(1 for p in d.get("partitions", []) if p.get("leader", -1) >= 0) for d in described
        }
        return {topic: led.get(topic, 0) for topic in expected}

    partitions = run_sync(seen_at_once())
    assert partitions == {topic: settings.partitions for topic in expected}
