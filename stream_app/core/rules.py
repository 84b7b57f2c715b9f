"""Alert rules: the YAML format, its defaults and its validation.

A rule that names an unknown metric, window or channel is a configuration
error (`RuleError`, one line) so a typo never silently disables an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stream_app.core.measures import METRICS
from stream_app.core.queues import OTHER, is_queue, queue_name
from stream_app.core.timeutil import parse_duration_ms
from stream_app.core.windows import TODAY, WindowSpec

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules" / "default.yaml"
SEVERITIES = ("info", "warning", "critical")
KINDS = ("threshold", "drop")


class RuleError(ValueError):
    """One line: which rule, which field, what is allowed."""


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    metric: str
    window: str
    severity: str
    channels: tuple[str, ...] | None  # None: every configured channel (not the `all` rollup)
    min_samples: int
    for_ms: int
    clear_for_ms: int
    hysteresis: float
    # threshold
    op: str = "below"
    threshold: float | None = None
    # drop
    baseline: str | None = None
    min_drop: float = 0.0
    confidence: float = 0.95
    clear_confidence: float = 0.8
    #: Queue series the rule watches (SPEC §4 dimensions): None every queue
    #: (`other` included), empty none (the default: rules watch channels).
    queues: frozenset[str] | None = frozenset()

    @property
    def worse_is_lower(self) -> bool:
        """For a drop rule: does "worse" mean a lower value (CSAT) or a higher one (wait)?"""
        return METRICS[self.metric].higher_is_better

    def applies_to(self, channel: str) -> bool:
        """Does the rule watch this series (a channel, `all`, or `queue:<name>`)? Agent
        series never (agent figures are for the JSON API only)."""
        if channel.startswith("agent:"):
            return False
        if is_queue(channel):
            return self.queues is None or queue_name(channel) in self.queues
        if self.channels is None:
            return channel != "all"
        return channel in self.channels

    @property
    def windows(self) -> tuple[str, ...]:
        return (self.window,) if self.baseline is None else (self.window, self.baseline)


def _field(raw: dict[str, Any], name: str, rule: str, default: Any = ...) -> Any:
    if name in raw:
        return raw[name]
    if default is ...:
        raise RuleError(f"rule {rule!r}: missing field {name!r}")
    return default


def _duration(value: Any, rule: str, field: str) -> int:
    try:
        return 0 if value in (0, "0") else parse_duration_ms(str(value))
    except ValueError:
        raise RuleError(
            f"rule {rule!r}: {field} must be a duration like 0s, 90s, 5m (got {value!r})"
        ) from None


def _window(value: Any, rule: str, field: str, bucket_ms: int, retention_ms: int) -> str:
    try:
        spec = WindowSpec.parse(str(value), bucket_ms)
    except ValueError:
        raise RuleError(
            f"rule {rule!r}: unknown {field} {value!r} (use today or whole minutes like 5m, 1h, 24h)"
        ) from None
    if spec.name != TODAY and spec.length_ms > retention_ms:
        raise RuleError(f"rule {rule!r}: {field} {value!r} is longer than the data kept")
    return spec.name


def _number(value: Any, rule: str, field: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"rule {rule!r}: {field} must be a number (got {value!r})")
    if (low is not None and value < low) or (high is not None and value > high):
        raise RuleError(f"rule {rule!r}: {field} must be between {low} and {high} (got {value!r})")
    return float(value)


def parse_rule(
    raw: Any, channels: tuple[str, ...], bucket_ms: int, retention_ms: int, queues: tuple[str, ...] = ()
) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"every rule must be a mapping (got {raw!r})")
    name = str(_field(raw, "name", "?"))
    kind = _field(raw, "kind", name)
    if kind not in KINDS:
        raise RuleError(f"rule {name!r}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
    metric = _field(raw, "metric", name)
    if metric not in METRICS:
        raise RuleError(f"rule {name!r}: unknown metric {metric!r} (known: {', '.join(METRICS)})")
    window = _window(_field(raw, "window", name), name, "window", bucket_ms, retention_ms)
    severity = _field(raw, "severity", name, "warning")
    if severity not in SEVERITIES:
        raise RuleError(f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}")
    selected = _field(raw, "channels", name, "all")
    chosen: tuple[str, ...] | None
    if selected == "all":
        chosen = None
    elif selected == "none":
        chosen = ()
    elif isinstance(selected, list) and selected:
        unknown = [c for c in selected if c not in (*channels, "all")]
        if unknown:
            raise RuleError(
                f"rule {name!r}: unknown channel {unknown[0]!r} (known: {', '.join(channels)}, all)"
            )
        chosen = tuple(str(c) for c in selected)
    else:
        raise RuleError(f"rule {name!r}: channels must be 'all', 'none' or a list of channels")
    common: dict[str, Any] = {
        "queues": _queues(raw, name, queues),
        "name": name,
        "kind": kind,
        "metric": metric,
        "window": window,
        "severity": severity,
        "channels": chosen,
        "min_samples": int(_number(_field(raw, "min_samples", name, 1), name, "min_samples", 1)),
        "for_ms": _duration(_field(raw, "for", name, "0s"), name, "for"),
        "clear_for_ms": _duration(_field(raw, "clear_for", name, "0s"), name, "clear_for"),
        "hysteresis": _number(_field(raw, "hysteresis", name, 0), name, "hysteresis", 0),
    }
    if kind == "threshold":
        op = _field(raw, "op", name)
        if op not in ("below", "above"):
            raise RuleError(f"rule {name!r}: op must be below or above (got {op!r})")
        threshold = _number(_field(raw, "threshold", name), name, "threshold")
        return Rule(**common, op=op, threshold=threshold)
    if METRICS[metric].kind not in ("ratio", "nps", "mean"):
        raise RuleError(f"rule {name!r}: drop rules need a ratio, NPS or mean metric, not {metric!r}")
    baseline = _window(_field(raw, "baseline", name), name, "baseline", bucket_ms, retention_ms)
    return Rule(
        **common,
        baseline=baseline,
        min_drop=_number(_field(raw, "min_drop", name), name, "min_drop", 0),
        confidence=_number(_field(raw, "confidence", name, 0.95), name, "confidence", 0.5, 0.9999),
        clear_confidence=_number(
            _field(raw, "clear_confidence", name, 0.8), name, "clear_confidence", 0.5, 0.9999
        ),
    )


def _queues(raw: dict[str, Any], name: str, queues: tuple[str, ...]) -> frozenset[str] | None:
    """A rule's `queues:`: absent (none), 'all' (every queue and `other`) or a list of
    configured queues (or `other`)."""
    selected = raw.get("queues")
    if selected is None:
        return frozenset()
    if not queues:
        raise RuleError(f"rule {name!r}: queues needs STREAM_APP_QUEUES (no queue is reported)")
    if selected == "all":
        return None
    known = (*queues, OTHER)
    if isinstance(selected, list) and selected:
        unknown = [q for q in selected if q not in known]
        if unknown:
            raise RuleError(f"rule {name!r}: unknown queue {unknown[0]!r} (known: {', '.join(known)})")
        return frozenset(str(q) for q in selected)
    raise RuleError(f"rule {name!r}: queues must be 'all' or a list of queues")


def _for_channels(raw: Any, channels: tuple[str, ...]) -> Any:
    """A shipped rule's channel list cut down to the configured channels; None when
    none of them is configured (the rule is left out)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("channels"), list):
        return raw
    kept = [c for c in raw["channels"] if c in (*channels, "all")]
    return {**raw, "channels": kept} if kept else None


def load_rules(
    path: Path | None,
    channels: tuple[str, ...],
    bucket_ms: int,
    retention_ms: int,
    queues: tuple[str, ...] = (),
) -> tuple[Rule, ...]:
    """Rules from a YAML file (`rules:` list); the shipped default when path is None.

    A user's file is strict (an unknown channel is an error: a typo must not
    silently disable an alert); the shipped defaults adapt to the configured
    channels (SPEC §1: a valid configuration always starts)."""
    source = path or DEFAULT_RULES
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"cannot read rules file {source}: {str(exc).splitlines()[0]}") from None
    raw_rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(raw_rules, list):
        raise RuleError(f"rules file {source} must hold a list under 'rules:'")
    if path is None:
        raw_rules = [adapted for r in raw_rules if (adapted := _for_channels(r, channels)) is not None]
    rules = tuple(parse_rule(r, channels, bucket_ms, retention_ms, queues) for r in raw_rules)
    names = [r.name for r in rules]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise RuleError(f"rule {duplicate!r} is defined twice")
    return rules
