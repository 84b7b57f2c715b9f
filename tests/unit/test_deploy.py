"""The compose stack's files agree with each other and with the service's defaults.

No Docker engine runs here, so what `docker compose up` would wire together is
checked as files: service names, ports, mounts, provisioning paths and uids.
(`scripts/compose-check` runs the real Compose CLI's `config` and promtool.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from stream_app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def mounts(service: str) -> dict[str, str]:
    """Container path → host path (relative to the repo) of the service's bind mounts."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        host, container, *_ = volume.split(":")
        if host.startswith("./"):
            found[container] = host[2:]
    return found


def test_kafka_is_the_official_image_in_kraft_mode_with_a_healthcheck() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "healthcheck" in kafka
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_worker_image_is_slim_and_not_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert bases and all(b.endswith("-slim") for b in bases)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile
    assert SERVICES["worker"]["build"] == "."
    assert SERVICES["generator"]["profiles"] == ["generator"]


def test_prometheus_scrapes_the_worker_service_on_its_web_port() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and "worker" in SERVICES
    assert sd["port"] == Settings().web_port
    assert f"{Settings().web_port}:{Settings().web_port}" in SERVICES["worker"]["ports"]
    assert mounts("prometheus")["/etc/prometheus"] == "deploy/prometheus"
    for rules in config["rule_files"]:
        assert (ROOT / "deploy" / "prometheus" / rules).is_file()


def test_grafana_provisions_the_datasource_and_dashboard_for_anonymous_viewers() -> None:
    grafana = SERVICES["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    bind = mounts("grafana")
    provisioning = ROOT / bind["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in SERVICES
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "cx-stream.yml").read_text())["providers"]
    dashboards_dir = provider["options"]["path"]
    assert dashboards_dir in bind
    dashboard = json.loads((ROOT / bind[dashboards_dir] / "cx-stream.json").read_text())
    used = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert used == {datasource["uid"]}
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_dir}/cx-stream.json"


def test_prometheus_sends_its_alerts_to_the_stacks_alertmanager() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (manager,) = config["alerting"]["alertmanagers"]
    (static,) = manager["static_configs"]
    assert static["targets"] == ["alertmanager:9093"]
    assert "9093:9093" in SERVICES["alertmanager"]["ports"]
    assert mounts("alertmanager")["/etc/alertmanager"] == "deploy/alertmanager"
    alertmanager = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in alertmanager["receivers"]}
    routed = {alertmanager["route"]["receiver"], *(r["receiver"] for r in alertmanager["route"]["routes"])}
    assert routed <= receivers
    # the routes and inhibition match on labels the Prometheus rules actually set
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    severities = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"]}
    assert {"critical", "warning"} <= severities
    # score alerts fire per channel and per queue (queue series carry `queue`, no `channel`)
    assert alertmanager["route"]["group_by"] == ["alertname", "channel", "queue"]
    assert all(rule["equal"] == ["channel", "queue"] for rule in alertmanager["inhibit_rules"])
