"""A real Prometheus (Debian's `prometheus`) scraping a real worker, with the compose
stack's own config and alert rules: every PromQL expression of the provisioned
Grafana dashboard must return data, and every alerting rule must evaluate cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.factories import event, now_ms, records, seed_mix
from tests.integration.harness import (
    GRAFANA_QUEUE,
    RUN,
    WorkerProcess,
    channel,
    free_port,
    metric_value,
    produce,
    run_sync,
)

pytestmark = [pytest.mark.integration, pytest.mark.broker_incidental]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: Windows whose score panels are checked (the seed events lie in the last 10 minutes,
#: which `today` does not hold in the first minutes after midnight).
WINDOWS = ("15m", "1h", "24h")


def prometheus_binary() -> str:
    found = os.environ.get("STREAM_APP_PROMETHEUS") or shutil.which("prometheus")
    if not found:
        pytest.fail(
            "no Prometheus server: install Debian's `prometheus` package or set STREAM_APP_PROMETHEUS"
        )
    return found


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = workdir / f"prometheus-{RUN}"
        self.dir.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s"})
        config["rule_files"] = [str(DEPLOY / "prometheus" / f) for f in config["rule_files"]]
        (job,) = config["scrape_configs"]
        del job["dns_sd_configs"]  # the compose service name; here, the test's worker
        job["static_configs"] = [{"targets": [target]}]
        self.config = self.dir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = self.dir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("/api/v1/query", query=expr)["result"]
        return result

    def wait_until(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process and self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log.read_text()[-3000:]}")


@pytest.fixture
def prometheus(worker: WorkerProcess, workdir: Path) -> Iterator[Prometheus]:
    server = Prometheus(workdir, f"127.0.0.1:{worker.port}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def dashboard_queries(ch: str) -> list[str]:
    """Every target expression of the dashboard, with Grafana's variables filled in."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "cx-stream.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    filled: list[str] = []
    for expr in exprs:
        expr = expr.replace("$channel", ch).replace("$queue", GRAFANA_QUEUE)
        expr = expr.replace("$__rate_interval", "1m").replace("$__range", "5m")
        filled.extend(sorted({expr.replace("$window", w) for w in WINDOWS}))
    assert not [e for e in filled if "$" in e], "a dashboard variable this test does not fill in"
    return filled


def test_dashboard_queries_and_alert_rules_on_a_real_prometheus(
    worker: WorkerProcess, bootstrap: str, prometheus: Prometheus
) -> None:
    ch = channel("grafana")
    # the seed mix, and a chat still waiting (the live queue's "longest wait" panel)
    waiting = (
        "cx.chats",
        event("chat.started", now_ms() - 30_000, ch, chat_id=f"{ch}-waiting", queue=GRAFANA_QUEUE),
    )
    # surveys sent and not answered (yet): the response-rate panels
    offers = [
        ("cx.surveys", event("survey.offered", now_ms() - 60_000, ch, response_id=f"{ch}-o{i}", survey="csat",
                             queue=GRAFANA_QUEUE))
        for i in range(10)
    ]  # fmt: skip
    run_sync(produce(bootstrap, records([*seed_mix(ch, now_ms(), GRAFANA_QUEUE), waiting, *offers])))
    worker.wait_until(
        lambda: metric_value(worker.metrics(), "cx_contacts", channel=ch, window="15m", kind="chat") == 13,
        60,
        "the seed events in /metrics",
    )
    # Enough scrapes for rate()/increase() (two samples) and several rule evaluations.
    prometheus.wait_until(
        lambda: prometheus.query(f'count_over_time(cx_contacts{{channel="{ch}", window="15m"}}[1m]) >= 5'),
        60,
        "five scrapes of the worker",
    )

    empty = [expr for expr in dashboard_queries(ch) if not prometheus.query(expr)]
    assert empty == [], "dashboard queries that return no data"
    channels = prometheus.api("/api/v1/label/channel/values", **{"match[]": "cx_contacts"})
    assert ch in channels  # the dashboard's $channel variable: label_values(cx_contacts, channel)
    queues = prometheus.api("/api/v1/label/queue/values", **{"match[]": "cx_contacts"})
    assert GRAFANA_QUEUE in queues  # the $queue variable: label_values(cx_contacts, queue)

    groups = prometheus.api("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 7
    assert [r["name"] for r in rules if r["health"] != "ok"] == [], rules


def test_a_live_workers_exposition_passes_promtool(worker: WorkerProcess, bootstrap: str) -> None:
    """SPEC §6: `promtool check metrics` passes on /metrics with every family populated
    (percentile families are summaries; no `_created` series)."""
    ch = channel("promtool")
    run_sync(produce(bootstrap, records(seed_mix(ch, now_ms()))))
    worker.wait_until(
        lambda: metric_value(worker.metrics(), "cx_resolved_contacts", channel=ch, window="15m"),
        60,
        "the seed events in /metrics",
    )
    exposition = worker.get("/metrics")
    assert (
        f'cx_first_response_seconds_count{{channel="{ch}",clock="calendar",kind="ticket",window="15m"}}'.encode()
        in exposition
    )
    promtool = shutil.which("promtool") or str(Path(prometheus_binary()).with_name("promtool"))
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60
    )
    problems = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0 and not problems.strip(), problems
