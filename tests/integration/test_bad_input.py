"""Bad input never stops the worker and is never lost: dead-letter with reasons."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app import config
from stream_app.config import DEFAULT_CHANNELS
from stream_app.core.intake import INPUTS, Accepted, Intake, Rejected, Schemas
from stream_app.core.replay import Replay
from stream_app.core.timeutil import format_ms
from tests.factories import encode, event, survey
from tests.integration.harness import (
    RUN,
    TEST_CHANNELS,
    WorkerProcess,
    channel,
    consume_all,
    consume_range,
    end_offsets,
    metric_value,
    produce,
)

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
        # a survey older than every window (a ticket or chat event that old still updates state)
        ("cx.surveys", b"k7", encode(survey("csat", 5, now - 3 * 86_400_000, ch)), "too_late"),
        ("cx.chats", b"k8", encode(event("chat.started", now + 3_600_000, ch, chat_id="k8")), "from_future"),
    ]
    good = [("cx.surveys", b"g1", encode(survey("csat", 5, now, ch)))]
    worker.settle(quiet=1.0, timeout=300)  # the shared worker: earlier records all counted
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
    # the same response under a new event id (and a bridge's key): a version of it (SPEC §3
    # re-rating), accepted, never a second response
    replayed_answer = dict(answer, event_id="another-event-id")
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

    worker.wait_until(lambda: duplicates() >= (1, 1), 30, "the two replays")
    worker.wait_until(
        lambda: outcome_counts(worker)[("cx.surveys", "accepted")] - before[("cx.surveys", "accepted")] >= 2,
        30,
        "the answer and its other version",
    )
    after = outcome_counts(worker)
    assert after[("cx.tickets", "duplicate")] - before[("cx.tickets", "duplicate")] == 1
    assert after[("cx.surveys", "duplicate")] - before[("cx.surveys", "duplicate")] == 1
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


# --- hypothesis: anything at all on the three input topics -------------------------

FUZZ_CHANNEL = channel("dlq")
TOPICS = ("cx.tickets", "cx.chats", "cx.surveys")
EXTREME_TIMES: list[Any] = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "1970-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-22T25:61:00Z",
    "",
    "yesterday",
    0,
    -1,
    1e300,
    None,
    [],
]
EXTREME_SCORES: list[Any] = [-1, 0, 11, 100, 10**30, -(10**30), 1e308, -1e308, 2.5, True, None, "5", [5], {}]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@st.composite
def valid_event(draw: st.DrawFn, topic: str, uid: str) -> dict[str, Any]:
    at = int(time.time() * 1000) - draw(st.integers(0, 3_600_000))
    if topic == "cx.tickets":
        return event("ticket.created", at, FUZZ_CHANNEL, ticket_id=f"fz-{uid}", event_id=f"fz-e-{uid}")
    if topic == "cx.chats":
        return event("chat.started", at, FUZZ_CHANNEL, chat_id=f"fz-{uid}", event_id=f"fz-e-{uid}")
    kind, high = draw(st.sampled_from([("csat", 5), ("nps", 10), ("ces", 7)]))
    low = 0 if kind == "nps" else 1
    score = draw(st.integers(low, high))
    return survey(kind, score, at, FUZZ_CHANNEL, response_id=f"fz-{uid}", event_id=f"fz-e-{uid}")


def dump(doc: dict[str, Any]) -> bytes:
    """The stdlib encoder: unlike orjson it writes integers beyond 64 bits, as producers may."""
    return json.dumps(doc).encode()


@st.composite
def input_record(draw: st.DrawFn, uid: str) -> tuple[str, bytes | None, bytes | None]:
    """One record: valid, or broken in one of the ways producers break things."""
    topic = draw(st.sampled_from(TOPICS))
    base = draw(valid_event(topic, uid))
    key = draw(st.one_of(st.just(uid.encode()), st.none(), st.binary(max_size=16)))
    how = draw(
        st.sampled_from(
            [
                "valid", "valid", "bytes", "truncated", "huge", "deep", "wrong_type", "unicode",
                "bad_utf8", "missing", "extra", "time", "score", "empty",
            ]
        )
    )  # fmt: skip
    doc = dict(base)
    if how == "bytes":
        return topic, key, draw(st.binary(max_size=300))
    if how == "empty":
        value = draw(st.sampled_from([b"", None, b"null", b"{}", b"[]", b'""']))
        return topic, key if value is not None else (key or uid.encode()), value  # Kafka needs one of them
    if how == "truncated":
        raw = dump(doc)
        return topic, key, raw[: draw(st.integers(0, len(raw) - 1))]
    if how == "huge":
        doc["notes"] = "x" * draw(st.integers(100_000, 600_000))
    elif how == "deep":
        depth = draw(st.integers(100, 5_000))
        return topic, key, b"[" * depth + b"]" * draw(st.sampled_from([depth, depth - 1]))
    elif how == "wrong_type":
        doc[draw(st.sampled_from(sorted(doc)))] = draw(json_values)
    elif how == "unicode":
        field = draw(st.sampled_from(["event_id", "channel", "event_type", "occurred_at"]))
        doc[field] = draw(st.text(min_size=0, max_size=30))
    elif how == "bad_utf8":
        raw = dump(doc)
        cut = draw(st.integers(1, len(raw) - 2))
        return (
            topic,
            key,
            raw[:cut] + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00"])) + raw[cut:],
        )
    elif how == "missing":
        del doc[draw(st.sampled_from(sorted(doc)))]
    elif how == "extra":
        doc[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    elif how == "time":
        doc["occurred_at"] = draw(
            st.one_of(
                st.sampled_from(EXTREME_TIMES),
                st.sampled_from([2, -40]).map(
                    lambda days: format_ms(int(time.time() * 1000) + days * 86_400_000)
                ),
            )
        )
    elif how == "score" and topic == "cx.surveys":
        doc["score"] = draw(st.sampled_from(EXTREME_SCORES))
    return topic, key, dump(doc)


@st.composite
def record_mix(draw: st.DrawFn) -> list[tuple[str, bytes | None, bytes | None]]:
    tag = uuid.uuid4().hex[:8]
    count = draw(st.integers(40, 120))
    records = [draw(input_record(f"{RUN}-{tag}-{i}")) for i in range(count)]
    for _ in range(draw(st.integers(0, 5))):  # exact replays: duplicates
        records.append(draw(st.sampled_from(records)))
    return records


@pytest.mark.fault
@settings(
    max_examples=int(os.environ.get("CX_FUZZ_EXAMPLES", "5")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(records=record_mix())
def test_arbitrary_input_is_accounted_for_record_by_record(
    worker: WorkerProcess, bootstrap: str, records: list[tuple[str, bytes | None, bytes | None]]
) -> None:
    """accepted + duplicate + dead-lettered = produced, per topic and outcome exactly as
    the pure core decides, each dead letter with the core's reason; the worker lives."""
    worker.settle(quiet=1.0, timeout=120)  # the shared worker: earlier records all counted
    before = outcome_counts(worker)
    dead_from = asyncio.run(end_offsets(bootstrap, "cx.deadletter"))
    now = int(time.time() * 1000)
    sent = asyncio.run(produce(bootstrap, records))

    settings_ = config.load({"STREAM_APP_CHANNELS": ",".join([*DEFAULT_CHANNELS, *TEST_CHANNELS])})
    intake = Intake(
        Schemas(), frozenset(settings_.channels), settings_.timeline(), settings_.lifecycle_rules()
    )
    reference = Replay(intake, now)
    reasons = {}
    for (topic, _, value), meta in zip(records, sent, strict=True):
        kind = INPUTS[topic][1]
        outcome = intake.process(topic, value, now, reference.stores[kind])
        reference.outcomes[(topic, _label(outcome))] += 1
        if isinstance(outcome, Rejected):
            reasons[(topic, meta.partition, meta.offset)] = outcome.reason

    def delta() -> dict[tuple[str, str], float]:
        after = outcome_counts(worker)
        return {k: after[k] - before[k] for k in after}

    worker.wait_until(lambda: sum(delta().values()) >= len(records), 60, "every record accounted for")
    worker.wait_until(lambda: worker.lag() == 0, 60, "the worker to catch up")
    found = delta()
    assert sum(found.values()) == len(records)
    assert {k: v for k, v in found.items() if v} == {k: float(v) for k, v in reference.outcomes.items() if v}

    dead = asyncio.run(consume_range(bootstrap, "cx.deadletter", dead_from))
    ours = {}
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        source = (
            headers["x-source-topic"],
            int(headers["x-source-partition"]),
            int(headers["x-source-offset"]),
        )
        if source in reasons:
            ours[source] = headers["x-error-reason"]
    assert ours == reasons
    assert worker.process is not None and worker.process.poll() is None


def _label(outcome: object) -> str:
    if isinstance(outcome, Accepted):
        return "accepted"
    if isinstance(outcome, Rejected):
        return "dead_letter"
    return "duplicate"
