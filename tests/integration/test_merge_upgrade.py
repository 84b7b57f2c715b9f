"""Upgrading from a version whose merge stage was a Faust agent (group `<app_id>`):
the merge stage's own group (`<app_id>-merge`) has no offsets yet, and goes on from
the old group's instead of reading every retained partial again. A partial the old
group had already applied (here: one adding 5 open tickets, as if its records had
since been swept) must not be applied a second time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from stream_app.config import load
from stream_app.internal_topics import partials_topic
from stream_app.topics import ensure_topics, partitions_of
from tests.factories import encode, event
from tests.integration.harness import RUN, channel, metric_value, produce

pytestmark = [pytest.mark.integration, pytest.mark.broker_incidental]


async def _commit_old_group_at_the_end(bootstrap: str, app_id: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=app_id, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions_of(consumer, partials_topic(app_id))
        consumer.assign(tps)
        await consumer.commit(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


def test_the_merge_group_goes_on_from_the_old_faust_group_s_offsets(
    start_worker: Any, bootstrap: str
) -> None:
    ch = channel("upgrade")
    app_id = f"cx-upgrade-{RUN}"
    asyncio.run(ensure_topics(load({"STREAM_APP_BROKER": bootstrap, "STREAM_APP_APP_ID": app_id})))
    now = int(time.time() * 1000)
    already_applied = orjson.dumps({"b": {}, "l": {"open": {str(now - 60_000): 5}}})
    asyncio.run(produce(bootstrap, [(partials_topic(app_id), ch.encode(), already_applied)]))
    asyncio.run(_commit_old_group_at_the_end(bootstrap, app_id))
    tid = f"{ch}-t1"
    ticket = encode(event("ticket.created", now, ch, ticket_id=tid))
    asyncio.run(produce(bootstrap, [("cx.tickets", tid.encode(), ticket)]))

    worker = start_worker(app_id, channel("probe"))
    worker.wait_until(
        lambda: metric_value(worker.metrics(), "cx_open_tickets", channel=ch) is not None,
        60,
        "the new ticket's channel on /metrics",
    )
    worker.settle()
    assert metric_value(worker.metrics(), "cx_open_tickets", channel=ch) == 1
