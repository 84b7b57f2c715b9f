"""Alerts on a real broker: one `firing` and one `resolved` per episode, also across a restart."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_app.core.intake import Schemas
from stream_app.core.timeutil import MINUTE_MS, parse_rfc3339_ms
from tests.factories import encode, survey
from tests.integration.harness import RUN, WorkerProcess, channel, consume_all, metric_value, produce

pytestmark = pytest.mark.integration


def rules_file(workdir: Path, ch: str) -> Path:
    path = workdir / f"rules-{ch}.yaml"
    rule = {
        "name": "csat_drop",
        "kind": "drop",
        "metric": "csat",
        "window": "2m",
        "baseline": "1h",
        "min_drop": 0.15,
        "confidence": 0.999,
        "clear_confidence": 0.99,
        "hysteresis": 0.05,
        "min_samples": 20,
        "for": "0s",
        "clear_for": "0s",
        "severity": "critical",
        "channels": [ch],
    }
    path.write_text(json.dumps({"rules": [rule]}))  # JSON is YAML
    return path


def answers(ch: str, satisfied: int, unhappy: int, start_ms: int, spread_ms: int, tag: str) -> list[Any]:
    total = satisfied + unhappy
    records = []
    for i in range(total):
        at = start_ms + (spread_ms * i) // max(total, 1)
        ev = survey("csat", 5 if i % total < satisfied else 1, at, ch, response_id=f"{ch}-{tag}-{i}")
        records.append(("cx.surveys", ev["response_id"].encode(), encode(ev)))
    return records


def alert_messages(bootstrap: str, ch: str, worker: WorkerProcess) -> list[dict[str, Any]]:
    """The alerts on `ch` written by `worker`'s deployment (header x-app-id): the
    session's shared worker, with the default rules, may alert on the channel too."""
    app_id = worker.env["STREAM_APP_APP_ID"].encode()
    return [
        orjson.loads(r.value)
        for r in asyncio.run(consume_all(bootstrap, "cx.alerts", isolation_level="read_committed"))
        if r.key.decode().split("/")[1] == ch and dict(r.headers or ()).get("x-app-id") == app_id
    ]


def stationary_then_drop(worker: WorkerProcess, bootstrap: str, ch: str) -> tuple[float, dict[str, Any]]:
    now = int(time.time() * 1000)
    # an hour of steady 85% satisfaction, and the last minute too
    asyncio.run(produce(bootstrap, answers(ch, 170, 30, now - 55 * MINUTE_MS, 50 * MINUTE_MS, "base")))
    asyncio.run(produce(bootstrap, answers(ch, 26, 4, now - 50_000, 40_000, "steady")))
    worker.wait_until(
        lambda: metric_value(worker.metrics(), "cx_csat_responses", channel=ch, window="1h") == 230,
        60,
        "the stationary stream",
    )
    time.sleep(2)  # a few evaluations of the steady state: nothing may fire
    assert alert_messages(bootstrap, ch, worker) == []
    started = time.time()
    asyncio.run(produce(bootstrap, answers(ch, 4, 36, int(started * 1000), 1_000, "drop")))
    found = worker.wait_until(
        lambda: [m for m in alert_messages(bootstrap, ch, worker) if m["state"] == "firing"], 60, "firing"
    )
    latency = parse_rfc3339_ms(found[0]["at"]) / 1000 - started
    return latency, found[0]


def recover(bootstrap: str, ch: str) -> None:
    now = int(time.time() * 1000)
    asyncio.run(produce(bootstrap, answers(ch, 380, 20, now, 1_000, "recovery")))


def check_episode(messages: list[dict[str, Any]], ch: str) -> None:
    schemas = Schemas()
    assert [m["state"] for m in messages] == ["firing", "resolved"], messages
    firing, resolved = messages
    for m in messages:
        assert schemas.error("alert", m) is None, m
        assert (m["rule"], m["channel"], m["window"], m["metric"]) == ("csat_drop", ch, "2m", "csat")
        assert m["severity"] == "critical"
    assert firing["alert_id"] == resolved["alert_id"]
    assert firing["started_at"] == resolved["started_at"]
    assert firing["value"] < firing["baseline"] - 0.15
    assert firing["summary"].startswith(f"CSAT on {ch} fell from 85% to")


def test_drop_fires_once_and_resolves_once(
    start_worker: Any, bootstrap: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ch = channel("alert")
    worker = start_worker(f"cx-alert-{RUN}", channel("probe"), STREAM_APP_RULES=str(rules_file(workdir, ch)))
    latency, _ = stationary_then_drop(worker, bootstrap, ch)
    assert metric_value(worker.metrics(), "cx_alert_firing", rule="csat_drop", channel=ch, window="2m") == 1
    recover(bootstrap, ch)
    worker.wait_until(
        lambda: [m for m in alert_messages(bootstrap, ch, worker) if m["state"] == "resolved"], 60, "resolved"
    )
    time.sleep(3)  # several more evaluations: no further messages
    check_episode(alert_messages(bootstrap, ch, worker), ch)
    samples = worker.metrics()
    assert metric_value(samples, "cx_alert_firing", rule="csat_drop", channel=ch, window="2m") == 0
    assert (
        metric_value(samples, "cx_alerts_total", rule="csat_drop", severity="critical", state="firing") == 1
    )
    with capsys.disabled():
        print(f"\n  first drop event produced → firing alert: {latency * 1000:.0f} ms")


def test_one_episode_across_a_worker_restart(start_worker: Any, bootstrap: str, workdir: Path) -> None:
    ch = channel("alert_restart")
    app_id = f"cx-alert-restart-{RUN}"
    env = {"STREAM_APP_RULES": str(rules_file(workdir, ch)), "STREAM_APP_STORE": "rocksdb://"}
    worker = start_worker(app_id, channel("probe"), **env)
    stationary_then_drop(worker, bootstrap, ch)
    worker.stop()
    restarted = start_worker(app_id, channel("probe"), **env)
    time.sleep(3)  # the restored episode must not fire again
    assert [m["state"] for m in alert_messages(bootstrap, ch, worker)] == ["firing"]
    assert (
        metric_value(restarted.metrics(), "cx_alert_firing", rule="csat_drop", channel=ch, window="2m") == 1
    )
    recover(bootstrap, ch)
    restarted.wait_until(
        lambda: [m for m in alert_messages(bootstrap, ch, worker) if m["state"] == "resolved"], 60, "resolved"
    )
    time.sleep(3)
    check_episode(alert_messages(bootstrap, ch, worker), ch)


class Receiver:
    """A local HTTP endpoint standing in for Slack: records every POST body; answers
    the first one 503 (a receiver hiccup: the worker must retry)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.refused == 0:
                    receiver.refused += 1
                    self.send_response(503)
                else:
                    receiver.bodies.append(orjson.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_alerts_reach_a_webhook_once_per_state_change(
    start_worker: Any, bootstrap: str, workdir: Path
) -> None:
    ch = channel("webhook")
    receiver = Receiver()
    try:
        worker = start_worker(
            f"cx-alert-webhook-{RUN}",
            channel("probe"),
            STREAM_APP_RULES=str(rules_file(workdir, ch)),
            STREAM_APP_ALERT_WEBHOOK=receiver.url,
        )
        stationary_then_drop(worker, bootstrap, ch)
        recover(bootstrap, ch)

        def posted() -> list[dict[str, Any]]:
            return [b for b in receiver.bodies if b["alert"]["channel"] == ch]

        worker.wait_until(lambda: len(posted()) >= 2, 90, "a firing and a resolved POST")
        time.sleep(3)  # nothing more may arrive
        bodies = posted()
        check_episode([b["alert"] for b in bodies], ch)
        assert bodies[0]["text"].startswith(":rotating_light: *FIRING* [critical] CSAT on")
        assert bodies[1]["text"].startswith(":white_check_mark: *RESOLVED*")
        assert receiver.refused == 1  # the first POST was refused and retried
        # cx.alerts is shared by the session's other workers (other app ids), whose
        # alerts are not this deployment's to post: only its own two arrive
        assert [b["alert"]["channel"] for b in receiver.bodies] == [ch, ch]
        assert metric_value(worker.metrics(), "cx_alert_notifications_total", outcome="sent") == 2
    finally:
        receiver.close()
