"""A new deployment on topics that already hold days of history (issue 11, cases
2 and 3): ticket events older than every window build state and backlog and are
accepted, a reopen two days after the resolution does not count the ticket twice,
a resolution whose creation was never seen is left out and counted incomplete, and
only a survey too old for any window is dead-lettered `too_late`."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.factories import encode, event, survey
from tests.integration.harness import RUN, channel, metric_value, produce, run_sync

pytestmark = pytest.mark.integration
HOUR = 3_600_000
DAY = 24 * HOUR


def history(ch: str, now: int) -> list[tuple[str, bytes | None, bytes]]:
    def tk(kind: str, at: int, tid: str) -> tuple[str, bytes | None, bytes]:
        return ("cx.tickets", tid.encode(), encode(event(kind, at, ch, ticket_id=f"{tid}-{RUN}")))

    return [
        # A: created 3 days ago, answered, still open → backlog
        tk("ticket.created", now - 3 * DAY, "A"),
        tk("ticket.agent_replied", now - 3 * DAY + HOUR, "A"),
        # B: created and solved 2 days ago → closed
        tk("ticket.created", now - 2 * DAY, "B"),
        tk("ticket.resolved", now - 2 * DAY + HOUR, "B"),
        # C: solved 2 days ago, reopened an hour ago, solved again: counted once (2 days ago)
        tk("ticket.created", now - 2 * DAY - HOUR, "C"),
        tk("ticket.agent_replied", now - 2 * DAY - HOUR // 2, "C"),
        tk("ticket.resolved", now - 2 * DAY, "C"),
        tk("ticket.reopened", now - HOUR, "C"),
        tk("ticket.agent_replied", now - 50 * 60_000, "C"),
        tk("ticket.resolved", now - 30 * 60_000, "C"),
        # D: solved 2 days ago, reopened 10 minutes ago → backlog
        tk("ticket.created", now - 2 * DAY, "D"),
        tk("ticket.resolved", now - 2 * DAY + HOUR, "D"),
        tk("ticket.reopened", now - 10 * 60_000, "D"),
        # G: only its resolution was ever seen → incomplete, left out
        tk("ticket.resolved", now - HOUR, "G"),
        # a survey answered 2 days ago: nothing left to update → too_late
        ("cx.surveys", None, encode(survey("csat", 5, now - 2 * DAY, ch, response_id=f"S-{RUN}"))),
    ]


def test_a_worker_started_on_days_of_history_shows_the_backlog_at_once(
    bootstrap: str, start_worker: Any
) -> None:
    ch = channel("history")
    now = int(time.time() * 1000)
    run_sync(produce(bootstrap, history(ch, now)))
    worker = start_worker(f"cx-history-{RUN}", channel("probe"))  # starts after the history is there

    def samples() -> dict[str, float]:
        found: dict[str, float] = worker.metrics()
        return found

    worker.wait_until(
        lambda: metric_value(samples(), "cx_open_tickets", channel=ch) == 2,
        timeout=120,
        what="the backlog of the history channel (tickets A and D)",
    )
    worker.wait_until(
        lambda: (
            (metric_value(samples(), "cx_dead_letters_total", topic="cx.surveys", reason="too_late") or 0)
            >= 1
        ),
        timeout=60,
        what="the 2-day-old survey dead-lettered too_late",
    )
    snap = {s["window"]: s for s in worker.scores(channel=ch)}
    for window in ("15m", "1h", "24h", "today"):
        assert snap[window]["fcr"]["n"] == 0, window  # C counted in its first resolution's window only
        assert snap[window]["resolution_seconds"]["n"] == 0, window
        assert snap[window]["volume"]["tickets"] == 0, window
    final = samples()
    assert metric_value(final, "cx_open_tickets", channel=ch) == 2
    assert (metric_value(final, "cx_dead_letters_total", topic="cx.tickets", reason="too_late") or 0) == 0
    # G is on a partition of its own: the backlog above can show before G's batch is folded.
    worker.wait_until(
        lambda: (metric_value(samples(), "cx_incomplete_contacts_total", kind="ticket") or 0) >= 1,
        timeout=60,
        what="ticket G (only its resolution seen) counted as incomplete",
    )
