"""The queue dimension on real workers (issue 14): two workers share a stream whose
contacts are spread over three listed queues, an unlisted one and none (both
`other`), some moving between queues; every queue's figures equal the pure core's,
each queue series is exported by exactly one worker, and either worker lists every
agent's figures (`/api/v1/agents`, overall and per queue) as the pure core has them."""

from __future__ import annotations

import csv
import io
import os
import time
import urllib.error
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from stream_app.core import agents
from stream_app.metrics import parse_samples
from tests.factories import encode, event
from tests.integration.exactness import bench_stream, owns_channels, settle
from tests.integration.harness import GRAFANA_QUEUE, RUN, WorkerProcess, channel, produce, run_sync

pytestmark = pytest.mark.integration
EVENTS = int(os.environ.get("CX_QUEUES_EVENTS", "10000"))


def queue_series(worker: WorkerProcess) -> set[str]:
    """The `cx_csat_responses{queue=...}` series a worker exports (the queues it owns)."""
    samples = parse_samples(worker.get("/metrics").decode())
    return {key for key in samples if key.startswith("cx_csat_responses{") and "queue=" in key}


def _agents(worker: WorkerProcess, queue: str | None) -> list[dict[str, Any]]:
    query = {"window": "24h", **({"queue": queue} if queue else {})}
    found: list[dict[str, Any]] = orjson.loads(worker.get("/api/v1/agents?" + urlencode(query)))
    return found


def _reference_agents(stream: Any, queue: str) -> dict[str | None, list[dict[str, Any]]]:
    stream.reference.snapshots(int(time.time() * 1000))
    owned = stream.reference.scoreboard.agent_windows()
    views = [(s, w, agg) for s, wins in owned.items() for w, agg in wins.items()]
    everyone = agents.table(views, "24h", None)
    assert len(everyone) > 20, "the bench stream names agents"
    return {None: everyone, queue: agents.table(views, "24h", queue)}


def test_queues_are_exact_and_exported_once_across_two_workers(
    bootstrap: str, workdir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = bench_stream("queues", EVENTS, seed=14, queues=True)
    app_id = f"cx-{stream.name}-{stream.channels[0].rsplit('_', 1)[-1]}"
    workers = [WorkerProcess(bootstrap, workdir, app_id, **stream.env) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.wait_until(lambda w=worker: owns_channels(w), 180, "both workers to own partitions")
        run_sync(produce(bootstrap, stream.records))
        result = settle(workers, stream)
        exported = [queue_series(w) for w in workers]
        listed = stream.env["STREAM_APP_QUEUES"].split(",")
        api = {s["queue"]: s for s in workers[0].scores(by="queue", window="24h")}
        one = workers[1].scores(queue=listed[0], window="24h")
        reference_agents = _reference_agents(stream, listed[0])
        # every agent, from either worker (each publishes the agents it owns every 5 s)
        workers[0].wait_until(
            lambda: _agents(workers[0], None) == reference_agents[None], 60, "every agent in /api/v1/agents"
        )
        try:
            workers[1].wait_until(
                lambda: _agents(workers[1], listed[0]) == reference_agents[listed[0]],
                60,
                "one queue's agents in /api/v1/agents",
            )
        except AssertionError:  # show how they differ (the log tail says little)
            assert _agents(workers[1], listed[0]) == reference_agents[listed[0]]
            raise

        def csv_matches_json() -> bool:
            """The CSV has the JSON's rows and values (two requests: retried over a
            publication of another worker's queues)."""
            text = workers[0].get("/api/v1/scores.csv?by=queue&window=24h").decode()
            rows = {r["queue"]: r for r in csv.DictReader(io.StringIO(text))}
            snaps = {s["queue"]: s for s in workers[0].scores(by="queue", window="24h")}
            return rows.keys() == snaps.keys() and all(
                int(rows[q]["volume.tickets"]) == s["volume"]["tickets"]
                and rows[q]["csat.value"] == ("" if s["csat"]["value"] is None else repr(s["csat"]["value"]))
                for q, s in snaps.items()
            )

        workers[0].wait_until(csv_matches_json, 30, "the CSV to match the JSON")
        with pytest.raises(urllib.error.HTTPError) as by_channel:
            workers[0].get("/api/v1/agents?channel=chat")  # silently ignored before: refused
    finally:
        for worker in workers:
            worker.stop()
    reference = {(s["channel"], s["window"]): s for s in stream.reference.snapshots(int(time.time() * 1000))}
    with capsys.disabled():
        sizes = {q: reference[(q, "24h")]["volume"] for q in stream.queues}
        print(
            f"\n  queues: {len(stream.records):,} events, 2 workers: lost {result.lost},"
            f" double {result.double}; {sizes}"
        )
    assert result.equal, f"lost {result.lost}, double {result.double}: {result.differing[:5]}"
    assert by_channel.value.code == 400 and "not per channel" in by_channel.value.read().decode()
    # each queue series once across the two workers, and both own some channels or queues
    assert not exported[0] & exported[1], exported[0] & exported[1]
    assert {key.split('queue="')[1].split('"')[0] for key in exported[0] | exported[1]} >= {*listed, "other"}
    # any worker serves every queue (its own live, the others' from cx.metrics)
    assert {*listed, "other"} <= set(api)
    assert all("channel" not in s for s in api.values())
    assert [s["queue"] for s in one] == [listed[0]]
    every = sum(reference[(q, "24h")]["volume"]["tickets"] for q in stream.queues)
    assert every == reference[("all", "24h")]["volume"]["tickets"], "queues partition the contacts"


def test_agents_says_when_agent_figures_are_off_and_refuses_a_channel(worker: WorkerProcess) -> None:
    """The shared worker runs with agent figures off (the default): an empty list would
    read as "no agent active", so the answer is a 400 that says how to turn them on."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        worker.get("/api/v1/agents?window=1h")
    assert refused.value.code == 400
    assert "STREAM_APP_AGENT_FIGURES=on" in refused.value.read().decode()


def test_a_changed_queue_list_moves_the_stored_contacts_at_the_restart(
    start_worker: Any, bootstrap: str
) -> None:
    """Counted with STREAM_APP_QUEUES=a,b, restarted with b,c: the contacts of `a`
    (no longer listed) move to `other` and those of `c` (counted under `other` so far)
    to `c` at the restart, not at their next event (closed tickets never get one);
    the queues still add up to `all`. Before: `c` showed 0 and `a`'s tickets were in
    no reported queue."""
    ch, app_id = channel("relabel"), f"cx-relabel-{RUN}"
    a, b, c = (f"rl{x}_{RUN}" for x in "abc")
    now = int(time.time() * 1000)
    named = [a, a, a, b, b, c]
    records = [
        (
            "cx.tickets",
            f"{ch}-t{i}".encode(),
            encode(event("ticket.created", now - 60_000, ch, ticket_id=f"{ch}-t{i}", queue=q)),
        )
        for i, q in enumerate(named)
    ]
    resolved = f"{ch}-t0"  # closed: no later event would move it
    records.append(
        (
            "cx.tickets",
            resolved.encode(),
            encode(event("ticket.resolved", now - 30_000, ch, ticket_id=resolved)),
        )
    )

    def tickets(worker: WorkerProcess, queue: str) -> tuple[int, int] | None:
        """(tickets created, open now) in the queue over 24 h; None before its first snapshot."""
        found = worker.scores(queue=queue, window="24h")
        return (found[0]["volume"]["tickets"], found[0]["open_tickets"]) if found else None

    first = start_worker(app_id, channel("probe"), STREAM_APP_QUEUES=f"{a},{b}")
    run_sync(produce(bootstrap, records))
    first.wait_until(lambda: tickets(first, a) == (3, 2), 60, "queue a's tickets counted")
    first.settle()
    first.stop()

    second = start_worker(app_id, channel("probe"), STREAM_APP_QUEUES=f"{b},{c}")

    def adds_up() -> bool:
        queues = second.scores(by="queue", window="24h")
        (everything,) = second.scores(channel="all", window="24h")
        return all(
            sum(s[field] if field == "open_tickets" else s["volume"]["tickets"] for s in queues)
            == (everything[field] if field == "open_tickets" else everything["volume"]["tickets"])
            for field in ("open_tickets", "tickets")
        )

    second.wait_until(lambda: tickets(second, c) == (1, 1), 60, "queue c's ticket moved from other")
    second.wait_until(adds_up, 60, "the queues to add up to all")
    assert tickets(second, b) == (2, 2)
    with pytest.raises(urllib.error.HTTPError) as unlisted:
        second.scores(queue=a, window="24h")
    assert unlisted.value.code == 400


def test_queries_that_cannot_be_met_are_refused_not_answered_empty(worker: WorkerProcess) -> None:
    """An unknown window gave `[]` (a CSV header only), and a team's wallboard naming a
    queue that is not reported (misspelt, a stray space) showed the `all` row alone:
    "no data", or the whole centre's figures on a team's screen. Each is a 400 naming
    what cannot be met."""
    refusals = {
        "/api/v1/scores?window=2h": "unknown window '2h'",
        "/api/v1/scores.csv?window=2h": "unknown window '2h'",
        "/api/v1/stream?window=2h": "unknown window '2h'",
        "/api/v1/stream?by=queue&queues=no_such_queue": "'no_such_queue' is not a reported queue",
        "/api/v1/stream?by=queue&queues=%20" + GRAFANA_QUEUE: f"' {GRAFANA_QUEUE}' is not a reported queue",
    }
    for path, reason in refusals.items():
        with pytest.raises(urllib.error.HTTPError) as refused:
            worker.get(path)
        assert refused.value.code == 400, path
        assert reason in refused.value.read().decode(), path
    assert worker.get("/api/v1/scores?window=1h").startswith(b"[")
