"""The provisioned Grafana dashboard: in step with its generator, every SPEC §6 metric on it."""

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "cx-stream.json"
SPEC_METRICS = (
    "cx_csat_ratio",
    "cx_csat_responses",
    "cx_nps_score",
    "cx_nps_responses",
    "cx_ces_agree_ratio",
    "cx_ces_average",
    "cx_ces_responses",
    "cx_fcr_ratio",
    "cx_resolved_contacts",
    "cx_first_response_seconds",
    "cx_resolution_seconds",
    "cx_chat_wait_seconds",
    "cx_abandoned_ratio",
    "cx_sla_attainment_ratio",
    "cx_contacts",
    "cx_open_tickets",
    "cx_sla_attainment_closed_ratio",
    "cx_sla_breaching_tickets",
    "cx_sla_breach_soon_tickets",
    "cx_oldest_open_ticket_seconds",
    "cx_chats_waiting",
    "cx_oldest_waiting_chat_seconds",
    "cx_events_total",
    "cx_alert_firing",
)


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboard", ROOT / "deploy" / "grafana" / "dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_committed_json_is_the_generator_output() -> None:
    assert DASHBOARD.read_text() == generator().render(), "run: python deploy/grafana/dashboard.py"


def test_every_spec_metric_has_a_panel() -> None:
    used = {name for expr in expressions() for name in re.findall(r"\bcx_\w+", expr)}
    assert not set(SPEC_METRICS) - used
    for target in ("first_response", "resolution"):
        assert any(f'target="{target}"' in e for e in expressions())
    for clock in ("calendar", "{{clock}}"):  # the business-hours values are on it too
        assert any(clock in json.dumps(p) for p in json.loads(DASHBOARD.read_text())["panels"])
    for quantile in ("0.5", "0.9"):
        assert any(f'quantile="{quantile}"' in e for e in expressions())


def test_panels_have_unique_ids_and_a_prometheus_datasource() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "prometheus"
