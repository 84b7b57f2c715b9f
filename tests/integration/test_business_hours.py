"""Issue 13's worked examples on a real worker with a business-hours calendar
(STREAM_APP_SCHEDULES): the figures as the service shows them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.factories import encode, event
from tests.integration.harness import RUN, channel, produce

pytestmark = [pytest.mark.integration, pytest.mark.broker_incidental]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def latest(now: datetime, hour: int, minute: int) -> datetime:
    """The latest moment at least a minute ago with this local (UTC) time of day."""
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate <= now - timedelta(minutes=1) else candidate - timedelta(days=1)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_worked_examples_on_a_live_worker(
    start_worker: Any, bootstrap: str, workdir: Path, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ch, ch2 = channel("business"), channel("business_daily")
    now = datetime.now(UTC)
    # 1. "Created Friday 17:30, answered Monday 09:45" in a 09:00-18:00 calendar: the
    #    reply is the latest 09:45 (so it is inside the 24h window), the creation three
    #    days before, and the calendar is open on those two weekdays only (the two days
    #    between are the weekend).
    answered = latest(now, 9, 45)
    created = (answered - timedelta(days=3)).replace(hour=17, minute=30)
    # 2. Created 09:00, pending 10:00-13:00, resolved 15:00, on the latest day whose
    #    15:00 has passed, on a channel whose calendar is 09:00-18:00 every day.
    resolved = latest(now, 15, 0)
    opened = resolved.replace(hour=9)
    days = {WEEKDAYS[d.weekday()] for d in (created, answered)}
    schedules = workdir / f"schedules-{RUN}.yaml"
    schedules.write_text(
        json.dumps(
            {
                "calendars": {
                    "office": {"timezone": "UTC", "hours": {d: "09:00-18:00" for d in sorted(days)}},
                    "daily": {"timezone": "UTC", "hours": {"daily": "09:00-18:00"}},
                },
                "assign": {"channels": {ch: "office", ch2: "daily"}},
            }
        )
    )
    worker = start_worker(f"cx-business-{RUN}", channel("probe"), STREAM_APP_SCHEDULES=str(schedules))

    def pending_ticket(kind: str, at: datetime, **extra: str) -> dict[str, Any]:
        return event(kind, ms(at), ch2, ticket_id=f"{ch2}-pending", **extra)

    events = [
        event("ticket.created", ms(created), ch, ticket_id=f"{ch}-weekend"),
        event("ticket.agent_replied", ms(answered), ch, ticket_id=f"{ch}-weekend"),
        # arrival order scrambled on purpose: the clocks do not depend on it
        pending_ticket("ticket.resolved", resolved),
        pending_ticket("ticket.status_changed", opened + timedelta(hours=4), status="open"),
        pending_ticket("ticket.created", opened),
        pending_ticket("ticket.status_changed", opened + timedelta(hours=1), status="pending"),
    ]
    asyncio.run(produce(bootstrap, [("cx.tickets", e["ticket_id"].encode(), encode(e)) for e in events]))

    def snapshot(name: str) -> dict[str, Any]:
        found = worker.scores(channel=name, window="24h")
        return found[0] if found else {}

    worker.wait_until(
        lambda: (
            snapshot(ch).get("first_response_seconds", {}).get("n") == 1
            and snapshot(ch2).get("resolution_seconds", {}).get("n") == 1
        ),
        60,
        "both worked examples in /api/v1/scores",
    )
    snap, pending = snapshot(ch), snapshot(ch2)
    shown = {
        "first_response_business_s": snap["first_response_business_seconds"]["mean"],
        "first_response_calendar_s": snap["first_response_seconds"]["mean"],
        "resolution_business_s": pending["resolution_business_seconds"]["mean"],
        "resolution_calendar_s": pending["resolution_seconds"]["mean"],
    }
    record_property("worked_examples", shown)
    with capsys.disabled():
        print(f"\n  worked examples on a live worker: {shown}")
    # 30 min on the first open day + 45 min on the next = 75 min; 72 h - 7 h 45 min = 64 h 15 min
    assert shown["first_response_business_s"] == 75 * 60
    assert shown["first_response_calendar_s"] == (64 * 60 + 15) * 60
    # 6 h on the calendar, 3 of them pending
    assert shown["resolution_calendar_s"] == 6 * 3600
    assert shown["resolution_business_s"] == 3 * 3600
    assert snap["sla"]["first_response"]["value"] == 1.0  # 75 min < 2 h (it_services)
