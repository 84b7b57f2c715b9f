"""Bad input never stops the worker and is never lost: dead-letter with reasons."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.factories import encode, event, survey
from tests.integration.harness import WorkerProcess, channel, consume_all, metric_value, produce

pytestmark = pytest.mark.integration


def outcome_counts(worker: WorkerProcess) -> dict[tuple[str, str], float]:
    samples = worker.metrics()
    return {
        (topic, outcome): metric_value(samples, "cx_events_total", topic=topic, outcome=outcome) or 0.0
        for topic in ("cx.tickets", "cx.chats", "cx.surveys")
        for outcome in ("accepted", "duplicate", "dead_letter")
    }


def test_bad_records_are_dead_lettered_with_reasons(worker: WorkerProcess, bootstrap: str) -> None:
    ch = channel("dlq")
    now = int(time.time() * 1000)
    bad: list[tuple[str, bytes | None, bytes | None, str]] = [
        ("cx.tickets", b"k1", b"{not json", "invalid_json"),
        ("cx.chats", b"k2", b"\xff\xfe\x00", "invalid_json"),
        ("cx.surveys", b"k3", b"[1,2,3]", "schema"),
        ("cx.tickets", b"k4", encode({"event_id": "x", "event_type": "ticket.created"}), "schema"),
        (
            "cx.tickets",
            b"k5",
            encode(event("ticket.created", now, "fax_machine", ticket_id="k5")),
            "unknown_channel",
        ),
        ("cx.surveys", b"k6", encode(survey("csat", 9, now, ch)), "score_out_of_range"),
        (
            "cx.chats",
            b"k7",
            encode(event("chat.started", now - 3 * 86_400_000, ch, chat_id="k7")),
            "too_late",
        ),
        ("cx.chats", b"k8", encode(event("chat.started", now + 3_600_000, ch, chat_id="k8")), "from_future"),
    ]
    good = [("cx.surveys", b"g1", encode(survey("csat", 5, now, ch)))]
    before = outcome_counts(worker)
    sent = asyncio.run(produce(bootstrap, [(t, k, v) for t, k, v, _ in bad] + good))

    # Other tests' events may still be in flight to this shared worker: wait for and
    # compare only what these records change (dead letters, this channel's scores).
    def dead_lettered() -> float:
        after = outcome_counts(worker)
        return sum(after[k] - before[k] for k in after if k[1] == "dead_letter")

    worker.wait_until(lambda: dead_lettered() >= len(bad), 30, "every bad record dead-lettered")
    worker.wait_until(
        lambda: metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="15m") == 1,
        30,
        "the good record in /metrics",
    )
    after = outcome_counts(worker)
    delta = {k: after[k] - before[k] for k in after}
    for topic in ("cx.tickets", "cx.chats", "cx.surveys"):
        expected = sum(1 for t, *_ in bad if t == topic)
        assert delta[(topic, "dead_letter")] == expected, topic
        assert delta[(topic, "duplicate")] == 0, topic

    def dead_letters() -> dict[tuple[str, str, str], object]:
        records = asyncio.run(consume_all(bootstrap, "cx.deadletter"))
        found = {}
        for r in records:
            headers = {k: v.decode() for k, v in r.headers}
            found[(headers["x-source-topic"], headers["x-source-partition"], headers["x-source-offset"])] = (
                r,
                headers,
            )
        return found

    wanted = [
        (topic, str(meta.partition), str(meta.offset))
        for (topic, *_), meta in zip(bad, sent[: len(bad)], strict=True)
    ]
    index = worker.wait_until(
        lambda: (found := dead_letters()) and all(w in found for w in wanted) and found,
        30,
        "dead-letter records",
    )
    for (topic, key, value, reason), meta in zip(bad, sent[: len(bad)], strict=True):
        record, headers = index[(topic, str(meta.partition), str(meta.offset))]
        assert headers["x-error-reason"] == reason
        assert headers["x-error-detail"]
        assert record.key == key
        assert record.value == value  # the original bytes, unchanged
    # and the worker keeps going
    assert worker.process is not None and worker.process.poll() is None


def test_duplicates_are_counted_once(worker: WorkerProcess, bootstrap: str) -> None:
    ch = channel("dup")
    now = int(time.time() * 1000)
    created = event("ticket.created", now - 60_000, ch, ticket_id=f"{ch}-1")
    answer = survey("csat", 5, now, ch, response_id=f"{ch}-r1")
    replayed_answer = dict(answer, event_id="another-event-id")  # same response, new event id
    batch = [
        ("cx.tickets", created["ticket_id"].encode(), encode(created)),
        ("cx.surveys", answer["response_id"].encode(), encode(answer)),
    ]
    before = outcome_counts(worker)
    asyncio.run(produce(bootstrap, batch))
    asyncio.run(produce(bootstrap, [*batch, ("cx.surveys", b"r1", encode(replayed_answer))]))

    def duplicates() -> tuple[float, float]:
        after = outcome_counts(worker)
        return tuple(after[(t, "duplicate")] - before[(t, "duplicate")] for t in ("cx.tickets", "cx.surveys"))

    worker.wait_until(lambda: duplicates() >= (1, 2), 30, "the three replays")
    after = outcome_counts(worker)
    assert after[("cx.tickets", "duplicate")] - before[("cx.tickets", "duplicate")] == 1
    assert after[("cx.surveys", "duplicate")] - before[("cx.surveys", "duplicate")] == 2
    samples = worker.wait_until(
        lambda: (
            (m := worker.metrics())
            and metric_value(m, "cx_open_tickets", channel=ch) == 1
            and metric_value(m, "cx_csat_responses", channel=ch, window="15m") is not None
            and m
        ),
        30,
        "the merge stage",
    )
    assert metric_value(samples, "cx_csat_responses", channel=ch, window="15m") == 1
    assert metric_value(samples, "cx_contacts", channel=ch, window="15m", kind="ticket") == 1
    assert metric_value(samples, "cx_open_tickets", channel=ch) == 1
