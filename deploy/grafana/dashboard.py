"""Writes the provisioned Grafana dashboard `dashboards/cx-stream.json`.

The JSON is what Grafana loads; this script is how it is edited (a JSON file
with 30 panels is easy to get subtly wrong by hand). A test checks the
committed JSON equals this script's output, and another runs every PromQL
expression in it against a real Prometheus scraping a real worker.

    python deploy/grafana/dashboard.py        # rewrite the JSON after editing this file
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "cx-stream.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SEL = 'channel=~"$channel", window="$window"'
#: Queue series carry `queue` instead of `channel` (STREAM_APP_QUEUES, SPEC §4).
QSEL = 'queue=~"$queue", window="$window"'

# (title, unit, targets as (expr, legend), min, max)
Panel = tuple[str, str, list[tuple[str, str]], float | None, float | None]

ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Satisfaction ($window)",
        [
            ("CSAT (top-two-box share)", "percentunit", [(f"cx_csat_ratio{{{SEL}}}", "{{channel}}")], 0, 1),
            ("CSAT responses", "short", [(f"cx_csat_responses{{{SEL}}}", "{{channel}}")], 0, None),
            ("NPS", "none", [(f"cx_nps_score{{{SEL}}}", "{{channel}}")], -100, 100),
            ("NPS responses", "short", [(f"cx_nps_responses{{{SEL}}}", "{{channel}}")], 0, None),
            (
                "Survey response rate (answered / offered)",
                "percentunit",
                [(f"cx_survey_response_ratio{{{SEL}}}", "{{channel}}")],
                0,
                1,
            ),
            ("CES (share agreeing)", "percentunit", [(f"cx_ces_agree_ratio{{{SEL}}}", "{{channel}}")], 0, 1),
            (
                "CES mean score and responses",
                "none",
                [
                    (f"cx_ces_average{{{SEL}}}", "mean {{channel}}"),
                    (f"cx_ces_responses{{{SEL}}}", "responses {{channel}}"),
                ],
                0,
                None,
            ),
        ],
    ),
    (
        "Resolution ($window)",
        [
            ("First-contact resolution", "percentunit", [(f"cx_fcr_ratio{{{SEL}}}", "{{channel}}")], 0, 1),
            ("Resolved contacts", "short", [(f"cx_resolved_contacts{{{SEL}}}", "{{channel}}")], 0, None),
            (
                "First response time (p50, p90; tickets and chats apart, calendar time)",
                "s",
                [
                    (
                        f'cx_first_response_seconds{{{SEL}, clock="calendar", quantile="0.5"}}',
                        "p50 {{channel}} {{kind}}",
                    ),
                    (
                        f'cx_first_response_seconds{{{SEL}, clock="calendar", quantile="0.9"}}',
                        "p90 {{channel}} {{kind}}",
                    ),
                ],
                0,
                None,
            ),
            (
                "Resolution time (p50, p90; calendar time)",
                "s",
                [
                    (f'cx_resolution_seconds{{{SEL}, clock="calendar", quantile="0.5"}}', "p50 {{channel}}"),
                    (f'cx_resolution_seconds{{{SEL}, clock="calendar", quantile="0.9"}}', "p90 {{channel}}"),
                ],
                0,
                None,
            ),
            (
                "SLA attainment (open tickets past their target count as breached)",
                "percentunit",
                [
                    (
                        f'cx_sla_attainment_ratio{{{SEL}, target="first_response"}}',
                        "first response {{channel}} {{kind}}",
                    ),
                    (f'cx_sla_attainment_ratio{{{SEL}, target="resolution"}}', "resolution {{channel}}"),
                ],
                0,
                1,
            ),
        ],
    ),
    (
        "SLA clock and live queue",
        [
            (
                "Ticket first response p90: business hours vs calendar",
                "s",
                [
                    (
                        f'cx_first_response_seconds{{{SEL}, kind="ticket", quantile="0.9"}}',
                        "{{clock}} {{channel}}",
                    )
                ],
                0,
                None,
            ),
            (
                "Resolution p90: SLA clock (business hours, no pending) vs calendar",
                "s",
                [(f'cx_resolution_seconds{{{SEL}, quantile="0.9"}}', "{{clock}} {{channel}}")],
                0,
                None,
            ),
            (
                "SLA attainment over answered / resolved tickets only",
                "percentunit",
                [(f"cx_sla_attainment_closed_ratio{{{SEL}}}", "{{target}} {{channel}} {{kind}}")],
                0,
                1,
            ),
            (
                "Tickets breaching now",
                "short",
                [('cx_sla_breaching_tickets{channel=~"$channel"}', "{{target}} {{channel}}")],
                0,
                None,
            ),
            (
                "Tickets breaching within 15 minutes",
                "short",
                [('cx_sla_breach_soon_tickets{channel=~"$channel"}', "{{target}} {{channel}}")],
                0,
                None,
            ),
            (
                "Oldest open ticket",
                "s",
                [('cx_oldest_open_ticket_seconds{channel=~"$channel"}', "{{channel}}")],
                0,
                None,
            ),
            (
                "Chats waiting now",
                "short",
                [('cx_chats_waiting{channel=~"$channel"}', "{{channel}}")],
                0,
                None,
            ),
            (
                "Longest-waiting chat",
                "s",
                [('cx_oldest_waiting_chat_seconds{channel=~"$channel"}', "{{channel}}")],
                0,
                None,
            ),
        ],
    ),
    (
        "Chats, volume and backlog",
        [
            (
                "Chat wait (p50, p90)",
                "s",
                [
                    (f'cx_chat_wait_seconds{{{SEL}, quantile="0.5"}}', "p50 {{channel}}"),
                    (f'cx_chat_wait_seconds{{{SEL}, quantile="0.9"}}', "p90 {{channel}}"),
                ],
                0,
                None,
            ),
            ("Chat abandonment", "percentunit", [(f"cx_abandoned_ratio{{{SEL}}}", "{{channel}}")], 0, 1),
            (
                "Service level (chats answered within the threshold)",
                "percentunit",
                [(f"cx_service_level_ratio{{{SEL}}}", "{{channel}}")],
                0,
                1,
            ),
            (
                "Volume: contacts ($window)",
                "short",
                [(f"cx_contacts{{{SEL}}}", "{{kind}} {{channel}}")],
                0,
                None,
            ),
            (
                "Backlog: open tickets now",
                "short",
                [('cx_open_tickets{channel=~"$channel"}', "{{channel}}")],
                0,
                None,
            ),
        ],
    ),
    (
        "Queues ($window; $queue)",
        [
            ("CSAT by queue", "percentunit", [(f"cx_csat_ratio{{{QSEL}}}", "{{queue}}")], 0, 1),
            (
                "Service level by queue",
                "percentunit",
                [(f"cx_service_level_ratio{{{QSEL}}}", "{{queue}}")],
                0,
                1,
            ),
            (
                "First-response SLA attainment by queue (tickets)",
                "percentunit",
                [
                    (
                        f'cx_sla_attainment_ratio{{{QSEL}, target="first_response", kind="ticket"}}',
                        "{{queue}}",
                    )
                ],
                0,
                1,
            ),
            (
                "Survey response rate by queue",
                "percentunit",
                [(f"cx_survey_response_ratio{{{QSEL}}}", "{{queue}}")],
                0,
                1,
            ),
            ("Contacts by queue", "short", [(f"cx_contacts{{{QSEL}}}", "{{kind}} {{queue}}")], 0, None),
            (
                "Live queue by queue: open tickets and chats waiting now",
                "short",
                [
                    ('cx_open_tickets{queue=~"$queue"}', "open tickets {{queue}}"),
                    ('cx_chats_waiting{queue=~"$queue"}', "chats waiting {{queue}}"),
                ],
                0,
                None,
            ),
        ],
    ),
    (
        "Pipeline",
        [
            (
                "Input events by outcome",
                "ops",
                [
                    (
                        "sum by (topic, outcome) (rate(cx_events_total[$__rate_interval]))",
                        "{{topic}} {{outcome}}",
                    )
                ],
                0,
                None,
            ),
            (
                "Consumer lag (input records not yet processed)",
                "short",
                [("sum by (topic) (cx_consumer_lag)", "{{topic}}")],
                0,
                None,
            ),
            (
                "Data age (seconds since data last arrived)",
                "s",
                [("max by (instance) (cx_data_age_seconds)", "{{instance}}")],
                0,
                None,
            ),
            (
                "Dead letters by reason",
                "ops",
                [
                    (
                        "sum by (topic, reason) (rate(cx_dead_letters_total[$__rate_interval]))",
                        "{{topic}} {{reason}}",
                    )
                ],
                0,
                None,
            ),
        ],
    ),
]


def _timeseries(panel_id: int, panel: Panel, x: int, y: int) -> dict[str, Any]:
    title, unit, targets, low, high = panel
    defaults: dict[str, Any] = {"unit": unit, "custom": {"lineWidth": 2, "spanNulls": False}}
    if low is not None:
        defaults["min"] = low
    if high is not None:
        defaults["max"] = high
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _alert_history(first_id: int, y: int) -> list[dict[str, Any]]:
    firing = {
        "id": first_id,
        "type": "state-timeline",
        "title": "Alert history (cx.alerts rules: firing periods)",
        "datasource": DATASOURCE,
        "gridPos": {"h": 9, "w": 16, "x": 0, "y": y},
        "fieldConfig": {
            "defaults": {
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "ok", "color": "green"},
                            "1": {"text": "firing", "color": "red"},
                        },
                    }
                ],
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
            "overrides": [],
        },
        "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "expr": 'max by (rule, channel, window) (cx_alert_firing{channel=~"$channel"})',
                "legendFormat": "{{rule}} {{channel}} {{window}}",
            }
        ],
    }
    changes = {
        "id": first_id + 1,
        "type": "table",
        "title": "Alert state changes in the time range",
        "datasource": DATASOURCE,
        "gridPos": {"h": 9, "w": 8, "x": 16, "y": y},
        "fieldConfig": {"defaults": {"decimals": 0}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "expr": "sum by (rule, severity, state) (round(increase(cx_alerts_total[$__range])))",
                "format": "table",
                "instant": True,
            }
        ],
    }
    return [firing, changes]


def _variables() -> list[dict[str, Any]]:
    return [
        {
            "name": "channel",
            "label": "Channel",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": "label_values(cx_contacts, channel)", "refId": "channel"},
            "definition": "label_values(cx_contacts, channel)",
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            # ".+", not ".*": queue series have no channel label and must not join these panels
            "allValue": ".+",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        },
        {
            "name": "queue",
            "label": "Queue",
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": "label_values(cx_contacts, queue)", "refId": "queue"},
            "definition": "label_values(cx_contacts, queue)",
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            "allValue": ".+",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        },
        {
            "name": "window",
            "label": "Window",
            "type": "custom",
            "query": "15m,1h,24h,today",
            "current": {"selected": True, "text": "1h", "value": "1h"},
            "options": [
                {"selected": w == "1h", "text": w, "value": w} for w in ("15m", "1h", "24h", "today")
            ],
            "multi": False,
            "includeAll": False,
        },
    ]


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    panel_id, y = 1, 0
    for title, row in ROWS:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id, y = panel_id + 1, y + 1
        for i, panel in enumerate(row):
            x = (i % 3) * 8
            panels.append(_timeseries(panel_id, panel, x, y + (i // 3) * 8))
            panel_id += 1
        y += ((len(row) + 2) // 3) * 8
    panels.append(
        {
            "id": panel_id,
            "type": "row",
            "title": "Alerts",
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": [],
        }
    )
    panels.extend(_alert_history(panel_id + 1, y + 1))
    return {
        "uid": "cx-stream",
        "title": "CX stream",
        "description": "CX scores per channel (and per queue, with STREAM_APP_QUEUES) and window,"
        " from the CX stream workers' /metrics.",
        "tags": ["cx-stream"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": _variables()},
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
