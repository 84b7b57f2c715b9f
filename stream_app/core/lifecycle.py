"""Ticket, chat and survey state machines.

Each entity's state is a JSON-compatible dict built only from order-free
summaries of its events (minimums, maximums, sets), and its metric facts are
a pure function of that state. The caller applies `facts(after) − facts(before)`
to the buckets, so any arrival order of the same events yields the same
buckets, and a replayed `event_id` changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream_app.core.aggregate import Fact
from stream_app.core.sla import SlaTargets
from stream_app.core.timeutil import DAY_MS

State = dict[str, Any]


@dataclass(frozen=True)
class LifecycleRules:
    sla: SlaTargets = field(default_factory=SlaTargets)
    fcr_reopen_ms: int = 7 * DAY_MS


def _earliest(current: list[Any] | None, candidate: list[Any]) -> list[Any]:
    """Keep the smaller (time, event_id, ...) record: deterministic on ties."""
    if current is None or candidate[:2] < current[:2]:
        return candidate
    return current


def _min(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)


def _remember(state: State, event: dict[str, Any], at_ms: int) -> bool:
    """Record what every event tells (id, last activity, earliest sighting).

    False when this event_id was already applied: the state is left untouched.
    """
    seen: list[str] = state.setdefault("ids", [])
    if event["event_id"] in seen:
        return False
    seen.append(event["event_id"])
    state["lt"] = max(state.get("lt", at_ms), at_ms)
    state["f"] = _earliest(state.get("f"), [at_ms, event["event_id"], event["channel"]])
    return True


# --- tickets -----------------------------------------------------------------


def apply_ticket_event(state: State, event: dict[str, Any], at_ms: int) -> bool:
    """Fold one ticket event into its state. False means a duplicate."""
    if not _remember(state, event, at_ms):
        return False
    kind = event["event_type"]
    if kind == "ticket.created":
        record = [at_ms, event["event_id"], event["channel"], event.get("priority") or "normal"]
        state["cr"] = _earliest(state.get("cr"), record)
    elif kind == "ticket.agent_replied":
        state["rp"] = sorted([*state.get("rp", []), at_ms])[:2]
    elif kind == "ticket.customer_replied":
        state["cu"] = _min(state.get("cu"), at_ms)
    elif kind == "ticket.resolved":
        first, last = state.get("rs") or (at_ms, at_ms)
        state["rs"] = [min(first, at_ms), max(last, at_ms)]
    elif kind == "ticket.reopened":
        state["ro"] = sorted([*state.get("ro", []), at_ms])
    return True


def ticket_is_open(state: State) -> bool:
    """Open when its latest creation/reopen is later than its latest resolution."""
    opened = ([state["cr"][0]] if state.get("cr") else []) + state.get("ro", [])[-1:]
    if not opened:
        return False
    resolved = state.get("rs")
    return resolved is None or max(opened) > resolved[1]


def ticket_facts(state: State, rules: LifecycleRules) -> list[Fact]:
    created = state.get("cr")
    channel: str = created[2] if created else state["f"][2]
    priority: str = created[3] if created else "normal"
    facts: list[Fact] = []
    replies: list[int] = state.get("rp", [])
    resolved = state.get("rs")
    if created:
        t0 = created[0]
        facts.append((channel, t0, "ticket_created", 0, 0))
        if replies:
            ms = max(0, replies[0] - t0)
            ok = ms <= rules.sla.target_ms("first_response", channel, priority)
            facts.append((channel, replies[0], "first_response", ms, int(ok)))
        if resolved:
            ms = max(0, resolved[0] - t0)
            ok = ms <= rules.sla.target_ms("resolution", channel, priority)
            facts.append((channel, resolved[0], "resolution", ms, int(ok)))
    if resolved:
        first_resolved = resolved[0]
        agent_replies_before = sum(1 for t in replies if t <= first_resolved)
        customer = state.get("cu")
        followed_up = customer is not None and customer < first_resolved
        revoked = any(first_resolved < t <= first_resolved + rules.fcr_reopen_ms for t in state.get("ro", []))
        first_contact = agent_replies_before <= 1 and not followed_up and not revoked
        facts.append((channel, first_resolved, "resolved_contact", 0, int(first_contact)))
    if ticket_is_open(state):
        facts.append((channel, 0, "open", 0, 0))
    return facts


# --- chats -------------------------------------------------------------------


def apply_chat_event(state: State, event: dict[str, Any], at_ms: int) -> bool:
    """Fold one chat event into its state. False means a duplicate."""
    if not _remember(state, event, at_ms):
        return False
    kind = event["event_type"]
    if kind == "chat.started":
        state["st"] = _earliest(state.get("st"), [at_ms, event["event_id"], event["channel"]])
    elif kind == "chat.agent_joined":
        state["jn"] = _min(state.get("jn"), at_ms)
    elif kind == "chat.message" and event.get("sender") == "agent":
        state["am"] = _min(state.get("am"), at_ms)
    elif kind == "chat.transferred":
        state["tr"] = True
    elif kind == "chat.ended":
        record = [at_ms, event["event_id"], bool(event.get("resolved", False))]
        state["en"] = _earliest(state.get("en"), record)
    return True


def chat_facts(state: State, rules: LifecycleRules) -> list[Fact]:
    started = state.get("st")
    channel: str = started[2] if started else state["f"][2]
    joined: int | None = state.get("jn")
    agent_message: int | None = state.get("am")
    # An agent's message proves an agent joined, even if the platform sent no join event.
    agent_in = min((t for t in (joined, agent_message) if t is not None), default=None)
    facts: list[Fact] = []
    if started:
        t0 = started[0]
        facts.append((channel, t0, "chat_started", 0, 0))
        if agent_message is not None:
            ms = max(0, agent_message - t0)
            ok = ms <= rules.sla.target_ms("first_response", channel, "normal")
            facts.append((channel, agent_message, "first_response", ms, int(ok)))
        if agent_in is not None:
            facts.append((channel, agent_in, "chat_wait", max(0, agent_in - t0), 0))
    ended = state.get("en")
    if ended:
        abandoned = agent_in is None or agent_in > ended[0]
        facts.append((channel, ended[0], "chat_ended", 0, int(abandoned)))
        if ended[2]:
            first_contact = not state.get("tr", False)
            facts.append((channel, ended[0], "resolved_contact", 0, int(first_contact)))
    return facts


# --- surveys -----------------------------------------------------------------


def survey_fact(event: dict[str, Any], at_ms: int, scale: int) -> Fact:
    return (event["channel"], at_ms, event["survey"], int(event["score"]), scale)


# --- expiry ------------------------------------------------------------------


def is_closed(kind: str, state: State) -> bool:
    if kind == "ticket":
        return state.get("rs") is not None and not ticket_is_open(state)
    if kind == "chat":
        return state.get("en") is not None
    return True


def expires_at(kind: str, state: State, retention_ms: int, open_ttl_ms: int) -> int | None:
    """When the state may go: closed work is kept for retention (late events still
    land), open work for open_ttl after its last event. None: no event time yet."""
    if "lt" not in state:
        return None
    return int(state["lt"]) + (retention_ms if is_closed(kind, state) else open_ttl_ms)


def expired(kind: str, state: State, now_ms: int, retention_ms: int, open_ttl_ms: int) -> bool:
    deadline = expires_at(kind, state, retention_ms, open_ttl_ms)
    return deadline is not None and now_ms > deadline
