"""Service level (SPEC §4): the share of chats answered within a threshold among
chats answered or abandoned, chats abandoned within the short-abandon time left out.

    service level = answered within T / (answered + abandoned after the short-abandon time)

This is the contact-center "X % answered in Y seconds" (the classic voice target is
80/20: 80 % within 20 s; chat desks commonly use 30–60 s). The defaults are SPEC
§4's: T = 60 s for every channel, short abandon 5 s (a customer who leaves within
5 s never gave an agent the chance: counting it would punish the queue for
misdials). Chats resolved by self-service with no agent (contained) are neither
answered nor abandoned: left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.core.timeutil import parse_duration_ms

DEFAULT_THRESHOLD_MS = 60_000
DEFAULT_SHORT_ABANDON_MS = 5_000


@dataclass(frozen=True)
class ServiceLevel:
    """Thresholds (ms): one per channel where configured, else `threshold_ms`."""

    threshold_ms: int = DEFAULT_THRESHOLD_MS
    per_channel: tuple[tuple[str, int], ...] = ()
    short_abandon_ms: int = DEFAULT_SHORT_ABANDON_MS

    def threshold(self, channel: str) -> int:
        for name, ms in self.per_channel:
            if name == channel:
                return ms
        return self.threshold_ms

    def judge(self, channel: str, wait_ms: int, answered: bool) -> int | None:
        """1 answered within the threshold, 0 answered later or abandoned after the
        short-abandon time, None left out (abandoned within it)."""
        if answered:
            return int(wait_ms <= self.threshold(channel))
        return None if wait_ms <= self.short_abandon_ms else 0


def parse_service_level(raw: str, channels: tuple[str, ...]) -> tuple[int, tuple[tuple[str, int], ...]]:
    """`STREAM_APP_SERVICE_LEVEL`: `60s` (every channel) or `chat=30s,phone=20s` with an
    optional default (`*=60s`). ValueError names what is wrong."""
    default = DEFAULT_THRESHOLD_MS
    seen_default = False
    per_channel: dict[str, int] = {}
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        name, sep, value = item.partition("=")
        if not sep:
            name, value = "*", item
        name = name.strip()
        ms = parse_duration_ms(value.strip())
        if ms <= 0:
            raise ValueError(f"{item!r}: the threshold must be positive")
        if name in per_channel or (name == "*" and seen_default):
            raise ValueError(f"{name!r} is given twice")
        if name == "*":
            default, seen_default = ms, True
        elif name in channels:
            per_channel[name] = ms
        else:
            raise ValueError(f"{item!r}: unknown channel {name!r}")
    return default, tuple(sorted(per_channel.items()))
