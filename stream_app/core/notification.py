"""What an alert webhook receives (STREAM_APP_ALERT_WEBHOOK): one POST per `cx.alerts`
message, a Slack incoming-webhook body (`text`, which Slack shows) that also carries
the whole alert (`alert`, schemas/alert.v1.json) for receivers that want fields.

Pure: no HTTP here (stream_app/alert_webhook.py sends it).
"""

from __future__ import annotations

from typing import Any

#: Slack mrkdwn prefixes, so a firing alert stands out in a channel of resolved ones.
_MARK = {"firing": ":rotating_light: *FIRING*", "resolved": ":white_check_mark: *RESOLVED*"}


def webhook_body(alert: dict[str, Any]) -> dict[str, Any]:
    """`{"text": "<state> [<severity>] <summary> (<rule>, <window>)", "alert": {...}}`."""
    state = str(alert.get("state", ""))
    mark = _MARK.get(state, state.upper())
    text = (
        f"{mark} [{alert.get('severity', '')}] {alert.get('summary', '')}"
        f" ({alert.get('rule', '')}, {alert.get('window', '')})"
    )
    return {"text": text, "alert": alert}


def retry_after(status: int | None) -> bool:
    """Should a delivery that got this HTTP status (None: no answer) be tried again?
    Network errors, timeouts, 408, 429 and 5xx: yes. Other 4xx: the receiver refuses
    the request as it is, so repeating it cannot help."""
    return status is None or status in (408, 429) or status >= 500
