"""SLA targets (SPEC §5, seed 002): presets, overridable per channel, queue and priority."""

from __future__ import annotations

from dataclasses import dataclass, field

from stream_app.core.timeutil import HOUR_MS

#: preset → (first response ms, resolution ms)
PRESETS: dict[str, tuple[int, int]] = {
    "it_services": (2 * HOUR_MS, 8 * HOUR_MS),
    "retail": (24 * HOUR_MS, 48 * HOUR_MS),
    "finance": (4 * HOUR_MS, 24 * HOUR_MS),
}
TARGETS = ("first_response", "resolution", "chat_first_response")
#: A chat's first response (first agent message − start) has a target of its own, in
#: seconds: 60 s, what customers call good for live chat (30-60 s in published
#: benchmarks, see the README) and the SPEC's default service-level threshold.
CHAT_FIRST_RESPONSE_MS = 60_000
PRIORITIES = ("low", "normal", "high", "urgent")


#: An override's key for a queue (a raw `queue` value, listed in STREAM_APP_QUEUES or not).
QUEUE_KEY = "queue:"


@dataclass(frozen=True)
class SlaTargets:
    """Targets from a preset, with overrides keyed (channel|"queue:<name>"|"*",
    priority|"*", target).

    The most specific override wins: the contact's queue and priority, its queue,
    its channel and priority, its channel, then `*` and priority, then `*` (every
    channel, every priority), then the preset. A queue's target is a team's
    agreement, so it comes before the channel's.
    """

    preset: str = "it_services"
    overrides: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def target_ms(self, target: str, channel: str, priority: str, queue: str | None = None) -> int:
        """The target in ms for a contact of `channel` and `priority` created in `queue`
        (None: its creation named none)."""
        if queue is not None and self.overrides:
            named = QUEUE_KEY + queue
            for key in ((named, priority), (named, "*")):
                found = self.overrides.get((*key, target))
                if found is not None:
                    return found
        for key in ((channel, priority), (channel, "*"), ("*", priority), ("*", "*")):
            found = self.overrides.get((*key, target))
            if found is not None:
                return found
        if target == "chat_first_response":
            return CHAT_FIRST_RESPONSE_MS
        first_response, resolution = PRESETS[self.preset]
        return first_response if target == "first_response" else resolution
