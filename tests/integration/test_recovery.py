"""State lives in changelog-backed tables: a restarted worker recovers it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.factories import encode, event, survey
from tests.integration.harness import RUN, channel, metric_value, produce

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
def test_restart_recovers_scores_and_ticket_state(start_worker: Any, bootstrap: str, store: str) -> None:
    ch = channel(f"restart_{store[:-3]}")
    app_id = f"cx-restart-{store[:4]}-{RUN}"
    worker = start_worker(app_id, channel("probe"), STREAM_APP_STORE=store)
    now = int(time.time() * 1000)
    tid = f"{ch}-{store[:4]}-t1"
    first = [
        ("cx.tickets", tid.encode(), encode(event("ticket.created", now - 5 * 60_000, ch, ticket_id=tid))),
        ("cx.surveys", b"r", encode(survey("csat", 5, now, ch, response_id=f"{tid}-r1"))),
        ("cx.surveys", b"r", encode(survey("csat", 1, now, ch, response_id=f"{tid}-r2"))),
    ]
    asyncio.run(produce(bootstrap, first))
    # A new app id reads the inputs from the start, other tests' events included, and
    # each input topic at its own pace: wait for the ticket as well as the surveys.
    worker.wait_until(
        lambda: (
            metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="15m") == 2
            and metric_value(worker.metrics(), "cx_open_tickets", channel=ch) == 1
        ),
        120,
        "2 surveys and the open ticket",
    )
    worker.stop()

    restarted = start_worker(app_id, channel("probe"), STREAM_APP_STORE=store)
    samples = restarted.metrics()
    # Recovered without any new input: windows from the scores changelog.
    assert metric_value(samples, "cx_csat_responses", channel=ch, window="15m") == 2
    assert metric_value(samples, "cx_csat_ratio", channel=ch, window="15m") == 0.5
    assert metric_value(samples, "cx_open_tickets", channel=ch) == 1
    # Ticket state recovered too: the reply after restart yields a first-response time,
    # and replaying the old survey is still a duplicate.
    asyncio.run(
        produce(
            bootstrap,
            [
                ("cx.tickets", tid.encode(), encode(event("ticket.agent_replied", now, ch, ticket_id=tid))),
                first[1],
            ],
        )
    )
    p50 = {"channel": ch, "window": "15m", "kind": "ticket", "clock": "calendar", "quantile": "0.5"}
    restarted.wait_until(
        lambda: metric_value(restarted.metrics(), "cx_first_response_seconds", **p50),
        60,
        "first response after restart",
    )
    samples = restarted.metrics()
    assert metric_value(samples, "cx_first_response_seconds", **p50) == pytest.approx(300, rel=0.01)
    assert metric_value(samples, "cx_csat_responses", channel=ch, window="15m") == 2
    restarted.stop()
