"""Agent figures (issue 14; SPEC §4: "Agent-level figures are never Prometheus labels;
the JSON API may list them").

Per agent and window: CSAT (with n and a Wilson interval), first-response time p50
(tickets and chats apart), resolved contacts and FCR. Like queues, an agent is a
*series* of facts: the contact's facts that an agent is responsible for are copied
to `agent:<queue>:<agent id>` (queue empty when STREAM_APP_QUEUES is off), so the
merge stage keeps them exact and windowed like everything else; they are never
snapshots, rules, Prometheus series or wallboard rows.

Whose figure a fact is (`agent_id` on the events):
  ticket first response   the agent of the earliest `ticket.agent_replied`
  ticket resolution/FCR   the agent of the earliest `ticket.resolved`
  chat first response     the agent of the earliest `chat.agent_joined`
  chat resolution/FCR     the agent of the latest `chat.agent_joined` (after a
                          transfer, the agent who finished the chat)
  survey (CSAT/NPS/CES)   the `agent_id` of the counted version

A fact whose agent is unknown is in no agent's figures (never guessed). Memory
follows the agents active within retention: a series whose buckets all aged out is
dropped like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stream_app.core.aggregate import Aggregate, Fact
from stream_app.core.formulas import ratio, wilson_interval
from stream_app.core.sketch import quantiles

PREFIX = "agent:"
#: The fact kinds an agent is credited with (others stay with channels and queues).
CREDITED = {
    "ticket": {"first_response": "first", "resolved_contact": "resolver"},
    "chat": {"chat_first_response": "first", "resolved_contact": "agent"},
    "survey": {"csat": "agent", "nps": "agent", "ces": "agent"},
}
#: Agent ids longer than this are cut (a series key travels in every partial).
MAX_ID = 100


def is_agent(series: str) -> bool:
    return series.startswith(PREFIX)


def series(queue: str, agent_id: str) -> str:
    """`agent:<queue>:<agent id>`; the queue is the reported label ('' without queues)."""
    return f"{PREFIX}{queue}:{agent_id[:MAX_ID]}"


def parse(series_key: str) -> tuple[str, str]:
    """`agent:billing:a17` → ('billing', 'a17')."""
    queue, _, agent_id = series_key[len(PREFIX) :].partition(":")
    return queue, agent_id


def credited(kind: str, facts: Iterable[Fact], roles: dict[str, str], queue: str) -> list[Fact]:
    """The facts of a contact copied to the series of the agents responsible for them
    (`roles`: role → agent id, from `lifecycle.agents_of`)."""
    wanted = CREDITED.get(kind, {})
    out: list[Fact] = []
    for fact in facts:
        role = wanted.get(fact[2])
        agent_id = roles.get(role) if role else None
        if agent_id:
            out.append((series(queue, agent_id), *fact[1:]))
    return out


def figures(agent_id: str, agg: Aggregate, queue: str | None) -> dict[str, Any]:
    """One agent's figures over one window (JSON), from the merged aggregate of its series."""
    csat_n, fcr_n = agg.get("csat_n"), agg.get("fcr_n")
    ci = wilson_interval(agg.get("csat_ok"), csat_n)
    fci = wilson_interval(agg.get("fcr_ok"), fcr_n)
    return {
        "agent_id": agent_id,
        **({"queue": queue} if queue is not None else {}),
        "csat": {
            "value": ratio(agg.get("csat_ok"), csat_n),
            "n": csat_n,
            "ci95": None if ci is None else list(ci),
        },
        "first_response_p50_seconds": _p50(agg, "frt"),
        "first_responses": agg.get("frt_n"),
        "chat_first_response_p50_seconds": _p50(agg, "cfrt"),
        "chat_first_responses": agg.get("cfrt_n"),
        "resolved_contacts": fcr_n,
        "fcr": {
            "value": ratio(agg.get("fcr_ok"), fcr_n),
            "n": fcr_n,
            "ci95": None if fci is None else list(fci),
        },
    }


def _p50(agg: Aggregate, name: str) -> float | None:
    counts = agg.sketches.get(name)
    if not counts:
        return None
    value = quantiles(counts, [0.5])[0.5]
    return None if value is None else value / 1000


def table(
    views: Iterable[tuple[str, str, Aggregate]], window: str, queue: str | None
) -> list[dict[str, Any]]:
    """`/api/v1/agents`: every agent with figures in `window` ((series, window,
    aggregate) triples from every worker), in `queue` only when given, else across
    queues (an agent's series are merged: exact, sketches included). Sorted by id."""
    merged: dict[str, Aggregate] = {}
    for series_key, name, agg in views:
        if name != window or agg.is_empty():
            continue
        found_queue, agent_id = parse(series_key)
        if queue is not None and found_queue != queue:
            continue
        merged.setdefault(agent_id, Aggregate()).merge(agg)
    return [figures(agent_id, agg, queue) for agent_id, agg in sorted(merged.items()) if not agg.is_empty()]
