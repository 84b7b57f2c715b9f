"""Settings from `STREAM_APP_*` environment variables (and matching CLI flags).

A bad value stops start-up with one line naming the variable and what is
allowed (`ConfigError`), instead of a traceback from deep inside Faust.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from stream_app.core.business_hours import Schedules, parse_schedules
from stream_app.core.intake import Intake, Schemas
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.queues import OTHER, Queues
from stream_app.core.rules import Rule, RuleError, load_rules
from stream_app.core.service_level import DEFAULT_SHORT_ABANDON_MS, ServiceLevel, parse_service_level
from stream_app.core.sla import PRESETS, PRIORITIES, QUEUE_KEY, TARGETS, SlaTargets
from stream_app.core.timeutil import parse_duration_ms
from stream_app.core.windows import TODAY, Timeline, WindowSpec
from stream_app.kafka.capabilities import KAFKA, BrokerCapabilities

PREFIX = "STREAM_APP_"
#: Variables whose values are never echoed, not even in a configuration error.
SECRETS = frozenset(
    {
        "API_TOKEN",
        "SASL_PASSWORD",
        "ALERT_WEBHOOK",
        "ZENDESK_SECRET",
        "INTERCOM_SECRET",
        "AMAZON_CONNECT_SECRET",
    }
)
DEFAULT_CHANNELS = ("phone", "email", "chat", "sms", "social", "video", "portal", "app", "in_person")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
T = TypeVar("T")


class ConfigError(ValueError):
    """One-line message naming the variable; the CLI prints it and exits 2."""


@dataclass(frozen=True)
class Settings:
    broker: tuple[str, ...] = ("kafka://localhost:9092",)
    web_port: int = 6066
    web_host: str = "0.0.0.0"
    store: str = "memory://"
    timezone: str = "UTC"
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    #: Queues reported as a dimension (SPEC §4); empty: off. Others are `other`.
    queues: tuple[str, ...] = ()
    #: Per-agent figures for /api/v1/agents: off (the default: no agent series at
    #: all; per-agent reporting often needs an agreement, and it costs the merge
    #: stage about a third of its throughput today) or on.
    agent_figures: str = "off"
    #: Chat service level (SPEC §4): threshold(s) as given (`60s`, `chat=30s,*=60s`)
    #: and the short-abandon time.
    service_level: str = "60s"
    short_abandon_ms: int = DEFAULT_SHORT_ABANDON_MS
    windows: tuple[str, ...] = ("15m", "1h", "24h", TODAY)
    partitions: int = 4
    rules: str | None = None
    sla_preset: str = "it_services"
    sla_overrides: dict[tuple[str, str, str], int] = field(default_factory=dict)
    bucket_ms: int = 60_000
    grace_ms: int = 600_000
    future_ms: int = 300_000
    fcr_reopen_ms: int = 7 * 86_400_000
    open_state_ttl_ms: int = 30 * 86_400_000
    flush_interval_ms: int = 200
    snapshot_interval_ms: int = 1000
    app_id: str = "cx-stream"
    data_dir: str = "./data"
    log_level: str = "info"
    replication_factor: int = 1
    #: What the broker can do: probed at start-up (`stream_app.kafka.probe`).
    capabilities: BrokerCapabilities = KAFKA
    #: Bearer token for /api and /wallboard; None leaves them open. Never printed.
    api_token: str | None = field(default=None, repr=False)
    #: Kafka connection security (TLS and/or SASL); the password is never printed.
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    alert_rules: tuple[Rule, ...] = ()
    #: Wallboard: scores from fewer responses are shown dimmed with n and interval.
    min_sample: int = 30
    #: Where every alert message is POSTed (a Slack incoming webhook or any HTTP
    #: receiver); None: alerts go to cx.alerts and Prometheus only. Never printed.
    alert_webhook: str | None = field(default=None, repr=False)
    #: auto, exactly_once (Kafka transactions) or at_least_once.
    processing_guarantee: str = "auto"
    #: Business-hours calendars (STREAM_APP_SCHEDULES, SPEC §5): the file's path and
    #: what it says. No file: every SLA clock runs 24/7.
    schedules_file: str | None = None
    schedules: Schedules = field(default_factory=Schedules)
    #: Names this worker's local intake state directory (rocksdb://); transactional
    #: producers are named per input partition instead. None: host name + web port.
    instance_id: str | None = None

    @property
    def guarantee(self) -> str:
        """The guarantee in force: `auto` is exactly_once where the broker has transactions."""
        if self.processing_guarantee != "auto":
            return self.processing_guarantee
        return "exactly_once" if self.capabilities.transactions else "at_least_once"

    @property
    def instance(self) -> str:
        return self.instance_id or f"{socket.gethostname()}-{self.web_port}"

    def timeline(self) -> Timeline:
        """Buckets and windows: the reported ones plus any the alert rules use."""
        return self._timeline([*self.windows, *(w for r in self.alert_rules for w in r.windows)])

    def reported_timeline(self) -> Timeline:
        return self._timeline(self.windows)

    def _timeline(self, names: list[str] | tuple[str, ...]) -> Timeline:
        specs = tuple(WindowSpec.parse(w, self.bucket_ms) for w in dict.fromkeys(names))
        return Timeline(specs, self.bucket_ms, self.grace_ms, self.future_ms, self.timezone)

    @property
    def queue_set(self) -> Queues:
        return Queues(frozenset(self.queues))

    def lifecycle_rules(self) -> LifecycleRules:
        threshold, per_channel = parse_service_level(self.service_level, self.channels)
        return LifecycleRules(
            SlaTargets(self.sla_preset, self.sla_overrides),
            self.fcr_reopen_ms,
            self.schedules,
            ServiceLevel(threshold, per_channel, self.short_abandon_ms),
        )

    def intake(self) -> Intake:
        """The event intake (decode, validate, fold into contact state) this
        configuration describes: its channels, timeline, lifecycle rules, open-state
        TTL, queues, and agent figures on or off."""
        return Intake(
            Schemas(),
            frozenset(self.channels),
            self.timeline(),
            self.lifecycle_rules(),
            self.open_state_ttl_ms,
            self.queue_set,
            agent_figures=self.agent_figures == "on",
        )

    @property
    def broker_urls(self) -> list[str]:
        return list(self.broker)

    @property
    def bootstrap(self) -> str:
        """host:port list for plain Kafka clients."""
        return ",".join(url.split("://", 1)[-1] for url in self.broker)

    @property
    def first_broker(self) -> tuple[str, int]:
        """(host, port) of the first bootstrap address, for a single raw connection."""
        host, _, port = self.bootstrap.split(",")[0].rpartition(":")
        return host, int(port)

    def ssl_context(self) -> ssl.SSLContext | None:
        if "SSL" not in self.security_protocol:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options for every aiokafka client we create ourselves."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if "SASL" in self.security_protocol:
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return options

    def faust_credentials(self) -> Any:
        """The same settings as Faust's `broker_credentials` (None for PLAINTEXT)."""
        import faust

        if "SASL" in self.security_protocol:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),
            )
        if self.security_protocol == "SSL":
            return faust.SSLCredentials(self.ssl_context())
        return None


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(PREFIX + name)
    return value.strip() if value is not None and value.strip() else None


def _parse(env: Mapping[str, str], name: str, parse: Callable[[str], T], allowed: str) -> T | None:
    raw = _get(env, name)
    if raw is None:
        return None
    try:
        return parse(raw)
    except (ValueError, KeyError) as exc:
        shown = "<hidden>" if name in SECRETS else repr(raw)
        raise ConfigError(f"{PREFIX}{name}={shown} is invalid: {allowed} ({exc})") from None


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"{value} out of range")
        return value

    return parse


def _brokers(raw: str) -> tuple[str, ...]:
    urls = []
    for part in raw.split(","):
        part = part.strip()
        url = part if "://" in part else f"kafka://{part}"
        if not re.match(r"^kafka://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$", url):
            raise ValueError(f"bad broker address {part!r}")
        urls.append(url)
    return tuple(urls)


def _store(raw: str) -> str:
    if raw not in ("memory://", "rocksdb://") and not raw.startswith("rocksdb://"):
        raise ValueError("unknown store")
    return raw


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone") from None
    return raw


def _channels(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    bad = [n for n in names if not _NAME.match(n) or n == "all"]
    if bad or not names:
        raise ValueError(f"bad channel names {bad}")
    return names


#: At most this many queues (plus `other`): every queue is a set of series.
MAX_QUEUES = 50
_QUEUE = re.compile(r"^[^\x00-\x1f,|:\x7f]{1,64}$")


def _queues(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if not names:  # e.g. "," : unset the variable to turn queues off
        raise ValueError("no queue named")
    bad = [n for n in names if not _QUEUE.match(n) or n.lower() in (OTHER, "all")]
    if bad:
        raise ValueError(f"bad queue names {bad}")
    folded: dict[str, str] = {}
    for name in names:  # events' names are matched exactly: `Billing` would go to `other`
        if (seen := folded.setdefault(name.lower(), name)) != name:
            raise ValueError(f"{seen!r} and {name!r} differ only in case (queue names are matched exactly)")
    if len(names) > MAX_QUEUES:
        raise ValueError(f"{len(names)} queues")
    return names


def _windows(bucket_ms: int) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
        if not names:
            raise ValueError("no windows")
        for name in names:
            WindowSpec.parse(name, bucket_ms)
        return names

    return parse


def _preset(raw: str) -> str:
    if raw not in PRESETS:
        raise ValueError("unknown preset")
    return raw


def _sla_overrides(raw: str) -> dict[tuple[str, str, str], int]:
    """`chat.first_response=5m;email/urgent.resolution=4h;*/high.first_response=1h;
    queue:billing.first_response=1h` (a queue: its raw name, without `/ . = ; , *`)."""
    result: dict[tuple[str, str, str], int] = {}
    for item in re.split(r"[;,]", raw):
        if not item.strip():
            continue
        match = re.match(
            r"^\s*(queue:[^/.=*\s]+|[a-z0-9_*]+)(?:/([a-z*]+))?\.([a-z_]+)\s*=\s*(\S+)\s*$", item
        )
        if not match:
            raise ValueError(f"bad item {item!r}")
        channel, priority, target, duration = match.groups()
        priority = priority or "*"
        if target not in TARGETS or (priority != "*" and priority not in PRIORITIES):
            raise ValueError(f"bad item {item!r}")
        result[(channel, priority, target)] = parse_duration_ms(duration)
    return result


def _rules_path(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError("file not found")
    return raw


GUARANTEES = ("auto", "exactly_once", "at_least_once")
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _choice(allowed: tuple[str, ...]) -> Callable[[str], str]:
    """Case-insensitive; returns the spelling in `allowed`."""

    def parse(raw: str) -> str:
        for name in allowed:
            if raw.strip().lower() == name.lower():
                return name
        raise ValueError("not one of them")

    return parse


def _token_free_text(raw: str) -> str:
    if not raw or any(c.isspace() for c in raw):
        raise ValueError("blank or has spaces")
    return raw


def _readable_file(raw: str) -> str:
    if not os.access(raw, os.R_OK) or not os.path.isfile(raw):
        raise ValueError("no such readable file")
    return raw


def _token(raw: str) -> str:
    if len(raw) < 16 or any(c.isspace() for c in raw):
        raise ValueError("weak or malformed token")
    return raw


def _webhook(raw: str) -> str:
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ValueError("not an http(s) URL")
    return raw


def _log_level(raw: str) -> str:
    if raw.lower() not in ("debug", "info", "warning", "error"):
        raise ValueError("unknown level")
    return raw.lower()


def load(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment; CLI flags arrive as keyword overrides."""
    env = dict(os.environ if env is None else env)
    base = Settings()
    bucket_ms = _parse(env, "BUCKET", parse_duration_ms, "a duration like 1m") or base.bucket_ms
    if 3_600_000 % bucket_ms:
        raise ConfigError(f"{PREFIX}BUCKET must divide one hour evenly (e.g. 30s, 1m, 5m)")
    durations = {
        "grace_ms": "GRACE",
        "future_ms": "FUTURE_TOLERANCE",
        "fcr_reopen_ms": "FCR_REOPEN_WINDOW",
        "open_state_ttl_ms": "OPEN_STATE_TTL",
        "flush_interval_ms": "FLUSH_INTERVAL",
        "snapshot_interval_ms": "SNAPSHOT_INTERVAL",
        "short_abandon_ms": "SHORT_ABANDON",
    }
    values: dict[str, object] = {"bucket_ms": bucket_ms}
    for attr, name in durations.items():
        duration = _parse(env, name, parse_duration_ms, "a duration like 500ms, 30s, 10m, 7d")
        if duration is not None:
            values[attr] = duration
    parsers: dict[str, tuple[str, Callable[[str], object], str]] = {
        "broker": ("BROKER", _brokers, "comma-separated kafka://host:port"),
        "web_port": ("WEB_PORT", _int_range(1, 65535), "a TCP port 1-65535"),
        "web_host": ("WEB_HOST", str, "an interface address"),
        "store": ("STORE", _store, "memory:// or rocksdb://"),
        "timezone": ("TIMEZONE", _timezone, "an IANA zone such as UTC or Asia/Tokyo"),
        "channels": ("CHANNELS", _channels, "comma-separated lowercase names, not 'all'"),
        "service_level": (
            "SERVICE_LEVEL",
            str,
            "a threshold like 60s, or per channel like chat=30s,phone=20s,*=60s",
        ),
        "queues": (
            "QUEUES",
            _queues,
            f"comma-separated queue names (at most {MAX_QUEUES}, up to 64 characters, no ':' or '|', not"
            f" '{OTHER}' or 'all')",
        ),
        "windows": ("WINDOWS", _windows(bucket_ms), "comma-separated durations (15m,1h,24h) or today"),
        "partitions": ("PARTITIONS", _int_range(1, 1024), "an integer 1-1024"),
        "rules": ("RULES", _rules_path, "path to an existing rules file"),
        "sla_preset": ("SLA_PRESET", _preset, "one of " + ", ".join(PRESETS)),
        "sla_overrides": (
            "SLA_OVERRIDES",
            _sla_overrides,
            "items like chat/urgent.first_response=5m or queue:billing.resolution=4h",
        ),
        "app_id": ("APP_ID", str, "a Kafka group id"),
        "data_dir": ("DATA_DIR", str, "a directory"),
        "log_level": ("LOG_LEVEL", _log_level, "debug, info, warning or error"),
        "replication_factor": ("REPLICATION_FACTOR", _int_range(1, 16), "an integer 1-16"),
        "api_token": ("API_TOKEN", _token, "at least 16 characters without spaces"),
        "security_protocol": ("SECURITY_PROTOCOL", _choice(PROTOCOLS), "one of " + ", ".join(PROTOCOLS)),
        "sasl_mechanism": ("SASL_MECHANISM", _choice(MECHANISMS), "one of " + ", ".join(MECHANISMS)),
        "sasl_username": ("SASL_USERNAME", str, "a user name"),
        "sasl_password": ("SASL_PASSWORD", str, "a password"),
        "ssl_cafile": ("SSL_CAFILE", _readable_file, "a readable PEM file"),
        "ssl_certfile": ("SSL_CERTFILE", _readable_file, "a readable PEM file"),
        "ssl_keyfile": ("SSL_KEYFILE", _readable_file, "a readable PEM file"),
        "processing_guarantee": (
            "PROCESSING_GUARANTEE",
            _choice(GUARANTEES),
            "auto, exactly_once or at_least_once",
        ),
        "instance_id": ("INSTANCE_ID", _token_free_text, "a name without spaces"),
        "alert_webhook": ("ALERT_WEBHOOK", _webhook, "an http:// or https:// URL"),
        "min_sample": ("MIN_SAMPLE", _int_range(1, 100_000), "an integer 1-100000"),
        "agent_figures": ("AGENT_FIGURES", _choice(("on", "off")), "on or off"),
        "schedules_file": ("SCHEDULES", _readable_file, "a readable YAML file of calendars"),
    }
    for attr, (name, parse, allowed) in parsers.items():
        found = _parse(env, name, parse, allowed)
        if found is not None:
            values[attr] = found
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.grace_ms < 0 or settings.future_ms < 0:
        raise ConfigError(f"{PREFIX}GRACE and {PREFIX}FUTURE_TOLERANCE must not be negative")
    _check_security(settings)
    _check_override_channels(settings)
    try:
        threshold, per_channel = parse_service_level(settings.service_level, settings.channels)
    except ValueError as exc:
        raise ConfigError(
            f"{PREFIX}SERVICE_LEVEL={settings.service_level!r} is invalid: a threshold like 60s, or per"
            f" channel like chat=30s,phone=20s,*=60s ({exc})"
        ) from None
    if settings.short_abandon_ms >= min([threshold, *(ms for _, ms in per_channel)]):
        raise ConfigError(
            f"{PREFIX}SHORT_ABANDON={settings.short_abandon_ms / 1000:g}s is not below every"
            f" {PREFIX}SERVICE_LEVEL threshold: every abandoned chat would be left out"
        )
    if settings.schedules_file:
        settings = replace(settings, schedules=load_schedules(settings.schedules_file, settings.channels))
    try:
        rules = load_rules(
            Path(settings.rules) if settings.rules else None,
            settings.channels,
            settings.bucket_ms,
            settings.reported_timeline().retention_ms,
            settings.queues,
        )
    except RuleError as exc:
        where = settings.rules or "the default rules"
        raise ConfigError(f"{PREFIX}RULES={where}: {exc}") from None
    return replace(settings, alert_rules=rules)


def load_schedules(path: str, channels: tuple[str, ...]) -> Schedules:
    """STREAM_APP_SCHEDULES: the calendars file, or one ConfigError line naming what is wrong."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return parse_schedules(raw, channels)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{PREFIX}SCHEDULES={path}: {detail}") from None


def _check_override_channels(settings: Settings) -> None:
    """An SLA override for a channel that is not configured would never apply: a typo."""
    for channel, priority, target in settings.sla_overrides:
        if channel != "*" and not channel.startswith(QUEUE_KEY) and channel not in settings.channels:
            item = f"{channel}{'' if priority == '*' else '/' + priority}.{target}"
            raise ConfigError(
                f"{PREFIX}SLA_OVERRIDES: {item} names unknown channel {channel!r}"
                f" (known: {', '.join(settings.channels)}, or * for every channel)"
            )


def _check_security(settings: Settings) -> None:
    """SASL needs a mechanism, a user and a password; each missing one is named."""
    if "SASL" not in settings.security_protocol:
        return
    needed = {
        "SASL_MECHANISM": settings.sasl_mechanism,
        "SASL_USERNAME": settings.sasl_username,
        "SASL_PASSWORD": settings.sasl_password,
    }
    for name, value in needed.items():
        if not value:
            raise ConfigError(
                f"{PREFIX}{name} is required with {PREFIX}SECURITY_PROTOCOL={settings.security_protocol}"
            )
