"""`stream-app connect` settings from `STREAM_APP_CONNECT_*` and per-source variables.

| env var | default | meaning |
|---|---|---|
| `STREAM_APP_CONNECT_PORT` | `6070` | the receiver's HTTP port |
| `STREAM_APP_CONNECT_MAX_BODY` | `1048576` | largest request body in bytes (413 above) |
| `STREAM_APP_CONNECT_RATE` | `200` | requests per second per source (429 above, with Retry-After) |
| `STREAM_APP_ZENDESK_SECRET` | none | webhook signing secret; when set, unsigned requests get 401 |
| `STREAM_APP_INTERCOM_SECRET` | none | the app's client secret (X-Hub-Signature); same rule |
| `STREAM_APP_AMAZON_CONNECT_SECRET` | none | API key an EventBridge API destination sends as `X-Api-Key` |
| `STREAM_APP_<SOURCE>_CHANNELS` | none | `name:channel` pairs, comma-separated; `*:channel` = the rest |
| `STREAM_APP_AMAZON_CONNECT_TOPIC` | none | raw topic holding contact events/records to map |

Bad values stop start-up with one `ConfigError` line naming the variable; a
secret's value is never shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from stream_app.config import PREFIX, ConfigError, _get, _int_range, _parse

SOURCES = ("zendesk", "intercom", "amazon_connect")


@dataclass(frozen=True)
class ConnectSettings:
    port: int = 6070
    max_body: int = 1 << 20
    rate: int = 200
    secrets: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    amazon_connect_topic: str | None = None

    def __repr__(self) -> str:  # never print the secrets
        return f"ConnectSettings(port={self.port}, secrets={sorted(self.secrets)})"


def _pairs(raw: str) -> dict[str, str]:
    pairs = {}
    for part in raw.split(","):
        name, sep, channel = part.strip().partition(":")
        if not sep or not name or not re.match(r"^[a-z0-9_]+$", channel):
            raise ValueError(f"{part.strip()!r} is not source:channel")
        pairs[name.strip().lower().replace(" ", "_")] = channel
    return pairs


def load(env: Mapping[str, str] | None = None) -> ConnectSettings:
    env = dict(os.environ if env is None else env)
    base = ConnectSettings()
    secrets = {}
    for source in SOURCES:
        value = _get(env, f"{source.upper()}_SECRET")
        if value is not None:
            secrets[source] = value
    channels = {}
    for source in SOURCES:
        pairs = _parse(env, f"{source.upper()}_CHANNELS", _pairs, "comma-separated source:channel pairs")
        if pairs:
            channels[source] = pairs
    topic = _get(env, "AMAZON_CONNECT_TOPIC")
    if topic is not None and not re.match(r"^[A-Za-z0-9._-]{1,249}$", topic):
        raise ConfigError(f"{PREFIX}AMAZON_CONNECT_TOPIC={topic!r} is invalid: a Kafka topic name")
    return ConnectSettings(
        port=_parse(env, "CONNECT_PORT", _int_range(1, 65535), "a TCP port") or base.port,
        max_body=_parse(env, "CONNECT_MAX_BODY", _int_range(1024, 64 << 20), "bytes, 1024–67108864")
        or base.max_body,
        rate=_parse(env, "CONNECT_RATE", _int_range(1, 1_000_000), "requests per second, ≥ 1") or base.rate,
        secrets=secrets,
        channels=channels,
        amazon_connect_topic=topic,
    )
