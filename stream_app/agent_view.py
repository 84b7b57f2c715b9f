"""Agent figures across workers (the shell of `core/agents.py`).

Each worker owns some agent series (like channels, by the partials partition of the
series key). Every few seconds it publishes the window aggregates of the series it
owns to the compacted internal topic `<app_id>-agents` (key `<series>/<window>`,
a tombstone once a series' window is empty), and every worker reads that topic, so
`/api/v1/agents` on any worker lists every agent. Aggregates, not figures, travel:
an agent's series in several queues (owned by different workers) merge exactly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from stream_app.core import agents
from stream_app.core.aggregate import Aggregate, encode_json
from stream_app.internal_topics import agents_topic

__all__ = ["PUBLISH_INTERVAL_S", "AgentView", "agents_topic"]

#: How often owned agent aggregates are published (they are not wallboard figures).
PUBLISH_INTERVAL_S = 5.0

Send = Callable[[bytes, bytes | None], Awaitable[Any]]


class AgentView:
    def __init__(self) -> None:
        #: (series, window) → aggregate, from other workers (and our own earlier output).
        self.remote: dict[tuple[str, str], Aggregate] = {}
        #: What this worker last published, to send only changes.
        self.sent: dict[tuple[str, str], bytes] = {}

    async def publish(self, owned: Mapping[str, Mapping[str, Aggregate]], send: Send) -> None:
        current = {
            (series, window): encode_json(agg.to_json())
            for series, windows in owned.items()
            for window, agg in windows.items()
        }
        for key, value in current.items():
            if self.sent.get(key) != value:
                await send(f"{key[0]}/{key[1]}".encode(), value)
        for key in self.sent.keys() - current.keys():
            await send(f"{key[0]}/{key[1]}".encode(), None)
        self.sent = current

    def forget_published(self) -> None:
        """After a rebalance: the series' new owners publish them now."""
        self.sent = {}

    def record(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        series, _, window = key.decode(errors="replace").rpartition("/")
        if value is None:
            self.remote.pop((series, window), None)
            return
        try:
            self.remote[(series, window)] = Aggregate.from_json(orjson.loads(value))
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            return

    def query(
        self, owned: Mapping[str, Mapping[str, Aggregate]], window: str, queue: str | None
    ) -> list[dict[str, Any]]:
        views = {key: agg for key, agg in self.remote.items() if key[0] not in owned}
        for series, windows in owned.items():
            for name, agg in windows.items():
                views[(series, name)] = agg
        return agents.table(((s, w, agg) for (s, w), agg in views.items()), window, queue)
