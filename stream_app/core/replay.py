"""The whole service in one process, no broker: the reference the tests trust.

It wires the same Intake → Partials → Scoreboard steps the two stages use,
so an integration test (or a crash test) can compare what the workers report
with what these events must give.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from stream_app.core import alerts
from stream_app.core.intake import DUPLICATE, INPUTS, Accepted, Intake, Rejected
from stream_app.core.lifecycle import State
from stream_app.core.rules import Rule
from stream_app.core.scoreboard import Partials, Scoreboard


class Replay:
    def __init__(
        self,
        intake: Intake,
        now_ms: int,
        rules: tuple[Rule, ...] = (),
        reported: tuple[str, ...] | None = None,
    ) -> None:
        self.intake = intake
        self.rules = rules
        self.alert_states: dict[str, dict[str, alerts.State]] = {}
        self.stores: dict[str, dict[str, State]] = {kind: {} for _, kind, _ in INPUTS.values()}
        self.partials = Partials(intake.timeline)
        self.scoreboard = Scoreboard(intake.timeline, now_ms, reported)
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.rejections: Counter[str] = Counter()

    def feed(self, topic: str, raw: bytes | None, now_ms: int) -> str:
        """Process one record; returns its outcome (accepted, duplicate, dead_letter)."""
        kind = INPUTS[topic][1]
        outcome = self.intake.process(topic, raw, now_ms, self.stores[kind])
        if isinstance(outcome, Accepted):
            self.partials.add(outcome.delta, outcome.queue)
            label = "accepted"
        elif isinstance(outcome, Rejected):
            self.rejections[outcome.reason] += 1
            label = "dead_letter"
        else:
            assert outcome == DUPLICATE
            label = "duplicate"
        self.outcomes[(topic, label)] += 1
        return label

    def restart(self, intake: Intake, now_ms: int) -> None:
        """Go on with another configuration (STREAM_APP_QUEUES changed, say): every
        stored contact is relabelled first, as the intake stage does when it is
        assigned a partition (`Intake.relabel_keys`)."""
        self.intake = intake
        for kind, store in self.stores.items():
            self.partials.add(intake.relabel_keys(kind, store, list(store), now_ms), "")

    def flush(self) -> None:
        for channel, partial in self.partials.drain().items():
            self.scoreboard.apply(channel, partial)

    def snapshots(self, now_ms: int) -> list[dict[str, Any]]:
        self.flush()
        self.scoreboard.advance(now_ms)
        return self.scoreboard.snapshots(exact=True)  # as of `now_ms`, never a cached second

    def alerts(self, now_ms: int) -> list[dict[str, Any]]:
        """Evaluate every rule on every channel at `now_ms`; returns the state changes."""
        self.flush()
        self.scoreboard.advance(now_ms)
        messages = []
        for channel in self.scoreboard.owned():
            windows = self.scoreboard.views(channel)
            live = self.scoreboard.figures(channel)
            states = self.alert_states.setdefault(channel, {})
            messages.extend(alerts.evaluate(self.rules, channel, windows, live, states, now_ms))
        return messages
