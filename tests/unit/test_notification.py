"""The alert webhook's body and retry rule (stream_app/core/notification.py)."""

from __future__ import annotations

import pytest

from stream_app import config
from stream_app.config import ConfigError
from stream_app.core.notification import retry_after, webhook_body

ALERT = {
    "alert_id": "csat_drop/chat/2m/1",
    "rule": "csat_drop",
    "channel": "chat",
    "window": "2m",
    "state": "firing",
    "severity": "critical",
    "summary": "CSAT on chat fell from 84% to 58% (n=212)",
}


def test_the_body_is_slack_text_plus_the_whole_alert() -> None:
    body = webhook_body(ALERT)
    assert body["alert"] == ALERT
    assert body["text"] == (
        ":rotating_light: *FIRING* [critical] CSAT on chat fell from 84% to 58% (n=212) (csat_drop, 2m)"
    )
    resolved = webhook_body({**ALERT, "state": "resolved"})
    assert resolved["text"].startswith(":white_check_mark: *RESOLVED* [critical]")


@pytest.mark.parametrize(
    ("status", "again"),
    [
        (None, True),
        (500, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (404, False),
        (410, False),
    ],
)
def test_only_transient_failures_are_retried(status: int | None, again: bool) -> None:
    assert retry_after(status) is again


def test_a_bad_webhook_url_is_one_line_that_does_not_echo_it() -> None:
    with pytest.raises(ConfigError) as raised:
        config.load({"STREAM_APP_ALERT_WEBHOOK": "hooks.slack.com/services/T000/B000/XXXX"})
    message = str(raised.value)
    assert message.startswith("STREAM_APP_ALERT_WEBHOOK") and "XXXX" not in message
    good = config.load({"STREAM_APP_ALERT_WEBHOOK": "https://hooks.slack.com/services/T000/B000/XXXX"})
    assert good.alert_webhook is not None and "XXXX" not in repr(good)
