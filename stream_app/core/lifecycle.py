"""Ticket, chat and survey state machines.

Each entity's state is a small JSON-compatible dict built only from order-free,
idempotent summaries of its events (minimums, maximums, the two earliest
replies, a bounded set of reopen times). Its metric facts are a pure function
of that state; the caller applies `facts(after) − facts(before)` to the
buckets. So any arrival order of the same events yields the same buckets, a
replayed event changes nothing even when it is no longer recognised by its
`event_id`, and the state's size does not grow with the number of events.

Missing history is never credited (SPEC §4 FCR): a ticket whose
`ticket.created` (a chat whose `chat.started`) was not seen contributes no
windowed figure at all, only its place in the backlog; `incomplete` tells the
caller to count it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from stream_app.core.aggregate import Fact
from stream_app.core.business_hours import Calendar, Schedules, deadline_ms, elapsed_ms
from stream_app.core.service_level import ServiceLevel
from stream_app.core.sla import SlaTargets
from stream_app.core.timeutil import DAY_MS

State = dict[str, Any]

#: Event ids remembered per entity (as 53-bit hashes) to label replays `duplicate`.
#: Older replays are still harmless: folding an event twice leaves the state as it was.
RECENT_IDS = 8
#: Reopen times kept per ticket: the earliest ones (they decide FCR revocation)
#: and the latest (it decides whether the ticket is open).
KEPT_REOPENS = 8
#: Status changes kept per ticket: the earliest ones and the latest (a ticket that
#: toggles pending more often than this has its middle toggles forgotten).
KEPT_STATUS = 64
#: `ticket.status_changed` statuses; pending and on-hold pause the resolution clock.
STATUS_CODES = {"open": 0, "pending": 1, "on_hold": 2}


@dataclass(frozen=True)
class LifecycleRules:
    sla: SlaTargets = field(default_factory=SlaTargets)
    fcr_reopen_ms: int = 7 * DAY_MS
    #: Business-hours calendars (SPEC §5); none assigned means 24/7.
    schedules: Schedules = field(default_factory=Schedules)
    #: Chat service level thresholds and short-abandon time (SPEC §4).
    service_level: ServiceLevel = field(default_factory=ServiceLevel)


def event_hash(event_id: str) -> int:
    """A stable 53-bit hash of an event id (same in every process; fits a JSON number)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 11


def _earliest(current: list[Any] | None, candidate: list[Any]) -> list[Any]:
    """Keep the smaller (time, event hash, ...) record: deterministic on ties."""
    if current is None or candidate[:2] < current[:2]:
        return candidate
    return current


def _latest(current: list[Any] | None, candidate: list[Any]) -> list[Any]:
    """Keep the greater (time, event hash, ...) record: deterministic on ties."""
    if current is None or candidate[:2] > current[:2]:
        return candidate
    return current


def agents_of(kind: str, state: State) -> dict[str, str]:
    """Who is responsible for what (`agents.CREDITED` roles → agent id); a role whose
    event named no agent is left out (never guessed)."""
    roles: dict[str, str] = {}
    if kind == "ticket":
        for role, key in (("first", "ra"), ("resolver", "rv")):
            found = state.get(key)
            if found and found[2]:
                roles[role] = str(found[2])
    elif kind == "chat":
        for role, key in (("first", "af"), ("agent", "ag")):
            found = state.get(key)
            if found:
                roles[role] = str(found[2])
    else:
        version = state.get("v")
        if version and len(version) > 7 and version[7]:
            roles["agent"] = str(version[7])
    return roles


def queue_of(kind: str, state: State) -> str | None:
    """The contact's queue (SPEC §4 dimensions): named by its latest event that names
    one; a survey response's by its latest version that names one, else by its offer
    (an answer often names none). None: no event named one."""
    if kind == "survey":
        named = state.get("qu")
        if named:  # [time, event_id, queue] of the latest version naming a queue
            return str(named[2])
        version = state.get("v")  # states stored before "qu" was kept for surveys
        if version and len(version) > 6 and version[6] is not None:
            return str(version[6])
        offer = state.get("of")
        return str(offer[4]) if offer and offer[4] is not None else None
    found = state.get("qu")
    return str(found[2]) if found else None


def _min(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)


def _first_sight(state: State, event_id: str, at_ms: int) -> int | None:
    """Note the event among the entity's recent ids and its last activity time.

    Returns the event's hash, or None when it is one of the recently applied
    events (a replay): the state is then left untouched.
    """
    digest = event_hash(event_id)
    recent: list[int] = state.setdefault("d", [])
    if digest in recent:
        return None
    recent.append(digest)
    if len(recent) > RECENT_IDS:
        del recent[0]
    state["lt"] = max(state.get("lt", at_ms), at_ms)
    return digest


def _remember(state: State, event: dict[str, Any], at_ms: int, start_field: str) -> int | None:
    """Record what every ticket/chat event tells (`_first_sight`, and the earliest
    sighting while the contact's start is missing); None for a replay."""
    digest = _first_sight(state, event["event_id"], at_ms)
    if digest is None:
        return None
    queue = event.get("queue")
    if queue is not None:  # the queue that has the contact now: named by its latest event
        state["qu"] = _latest(state.get("qu"), [at_ms, digest, queue])
    if start_field not in state:  # the channel of a contact whose start was not seen
        state["f"] = _earliest(state.get("f"), [at_ms, digest, event["channel"]])
    return digest


def _started(state: State, key: str, record: list[Any]) -> None:
    state[key] = _earliest(state.get(key), record)
    state.pop("f", None)


def _channel(state: State, start: list[Any] | None) -> str:
    return str(start[2] if start else state["f"][2])


# --- tickets -----------------------------------------------------------------


def apply_ticket_event(state: State, event: dict[str, Any], at_ms: int) -> bool:
    """Fold one ticket event into its state. False means a recognised replay."""
    digest = _remember(state, event, at_ms, "cr")
    if digest is None:
        return False
    kind = event["event_type"]
    if kind == "ticket.created":
        record = [at_ms, digest, event["channel"], event.get("priority") or "normal", event.get("queue")]
        _started(state, "cr", record)
    elif kind == "ticket.agent_replied":
        # The two earliest distinct replies, flat: [t1, h1, t2, h2].
        flat: list[int] = state.get("rp", [])
        replies = {(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)}
        replies.add((at_ms, digest))
        state["rp"] = [x for reply in sorted(replies)[:2] for x in reply]
        state["ra"] = _earliest(state.get("ra"), [at_ms, digest, event.get("agent_id")])
    elif kind == "ticket.customer_replied":
        state["cu"] = _min(state.get("cu"), at_ms)
    elif kind == "ticket.resolved":
        first, last = state.get("rs") or (at_ms, at_ms)
        state["rs"] = [min(first, at_ms), max(last, at_ms)]
        state["rv"] = _earliest(state.get("rv"), [at_ms, digest, event.get("agent_id")])
    elif kind == "ticket.reopened":
        times = sorted({*state.get("ro", []), at_ms})
        if len(times) > KEPT_REOPENS:
            times = [*times[: KEPT_REOPENS - 1], times[-1]]
        state["ro"] = times
    elif kind == "ticket.status_changed":
        changes = sorted(
            {(t, h, c) for t, h, c in state.get("sc", [])} | {(at_ms, digest, STATUS_CODES[event["status"]])}
        )
        if len(changes) > KEPT_STATUS:
            changes = [*changes[: KEPT_STATUS - 1], changes[-1]]
        state["sc"] = [list(change) for change in changes]
    return True


def pauses(state: State) -> list[tuple[int, int | None]]:
    """Pending/on-hold periods from the ticket's status changes, in event-time order
    ((from, to) ms; `to` None while it is still waiting)."""
    found: list[tuple[int, int | None]] = []
    since: int | None = None
    for at_ms, _, code in sorted(state.get("sc", [])):
        if code and since is None:
            since = at_ms
        elif not code and since is not None:
            found.append((since, at_ms))
            since = None
    if since is not None:
        found.append((since, None))
    return found


def _calendar(state: State, rules: LifecycleRules, channel: str) -> Calendar | None:
    return rules.schedules.calendar_for(channel, _created_queue(state.get("cr")))


def _created_queue(created: list[Any] | None) -> str | None:
    """The queue a ticket's creation named: its SLA calendar's and its SLA targets'
    (SPEC §5). Fixed when the ticket comes in, so a later move neither re-judges a
    reply or resolution already counted nor mixes two queues' terms in one ticket."""
    return str(created[4]) if created and len(created) > 4 and created[4] is not None else None


def ticket_is_open(state: State) -> bool:
    """Open once created (or reopened) until resolved, and again when reopened
    after its latest resolution. A creation stamped after the resolution (clock
    skew between systems) does not reopen it."""
    if "cr" not in state and "ro" not in state:
        return False
    resolved = state.get("rs")
    reopens: list[int] = state.get("ro", [])
    return resolved is None or (bool(reopens) and reopens[-1] > resolved[1])


def ticket_facts(state: State, rules: LifecycleRules) -> list[Fact]:
    """Windowed facts. First response and resolution are reported in calendar time
    and on the SLA clock (business hours where a calendar applies; resolution also
    without pending/on-hold time), and the SLA is judged on the SLA clock (SPEC §5)."""
    created = state.get("cr")
    channel = _channel(state, created)
    facts: list[Fact] = []
    if created:
        t0, priority = created[0], created[3]
        calendar = _calendar(state, rules, channel)
        queue = _created_queue(created)
        flat: list[int] = state.get("rp", [])
        replies = flat[0::2]
        resolved = state.get("rs")
        facts.append((channel, t0, "ticket_created", 0, 0))
        if replies:
            business = elapsed_ms(calendar, t0, replies[0])
            ok = business <= rules.sla.target_ms("first_response", channel, priority, queue)
            facts.append((channel, replies[0], "first_response", max(0, replies[0] - t0), int(ok)))
            facts.append((channel, replies[0], "first_response_business", business, 0))
        elif resolved:
            # Closed with no reply after its first-response target passed: the target
            # was missed (when it passed), and closing the ticket does not undo that.
            due = deadline_ms(calendar, t0, rules.sla.target_ms("first_response", channel, priority, queue))
            if due is not None and due <= resolved[0]:
                facts.append((channel, due, "first_response_missed", 0, 0))
        if resolved:
            first_resolved = resolved[0]
            business = elapsed_ms(calendar, t0, first_resolved, pauses(state))
            ok = business <= rules.sla.target_ms("resolution", channel, priority, queue)
            facts.append((channel, first_resolved, "resolution", max(0, first_resolved - t0), int(ok)))
            facts.append((channel, first_resolved, "resolution_business", business, 0))
            agent_replies_before = sum(1 for t in replies if t <= first_resolved)
            customer = state.get("cu")
            followed_up = customer is not None and customer < first_resolved
            limit = first_resolved + rules.fcr_reopen_ms
            revoked = any(first_resolved < t <= limit for t in state.get("ro", []))
            first_contact = agent_replies_before <= 1 and not followed_up and not revoked
            facts.append((channel, first_resolved, "resolved_contact", 0, int(first_contact)))
    return facts


def ticket_live(state: State, rules: LifecycleRules) -> list[Fact]:
    """Live-queue facts of an open ticket (not windowed: the merge stage compares
    their times with the wall clock, so a breach shows when it happens, with no event):

      open                 time = created (first seen, when its creation was not)
      first_response_due   no reply yet: when the first-response target is reached
      resolution_due       never resolved: when the resolution target is reached
                           (absent while pending/on hold short of it: it cannot breach)
    """
    if not ticket_is_open(state):
        return []
    created = state.get("cr")
    channel = _channel(state, created)
    if not created:  # missing history: in the backlog, never in an SLA figure
        return [(channel, int(state["f"][0]), "open", 0, 0)]
    t0, priority = created[0], created[3]
    calendar = _calendar(state, rules, channel)
    queue = _created_queue(created)
    live: list[Fact] = [(channel, t0, "open", 0, 0)]
    if not state.get("rp"):
        due = deadline_ms(calendar, t0, rules.sla.target_ms("first_response", channel, priority, queue))
        if due is not None:
            live.append((channel, due, "first_response_due", 0, 0))
    if not state.get("rs"):
        target = rules.sla.target_ms("resolution", channel, priority, queue)
        due = deadline_ms(calendar, t0, target, pauses(state))
        if due is not None:
            live.append((channel, due, "resolution_due", 0, 0))
    return live


# --- chats -------------------------------------------------------------------


#: How a chat ended (the flag of its `chat_ended` fact).
ANSWERED, ABANDONED, CONTAINED = 0, 1, 2


def apply_chat_event(state: State, event: dict[str, Any], at_ms: int) -> bool:
    """Fold one chat event into its state. False means a recognised replay."""
    digest = _remember(state, event, at_ms, "st")
    if digest is None:
        return False
    kind = event["event_type"]
    if kind == "chat.started":
        _started(state, "st", [at_ms, digest, event["channel"], event.get("queue")])
    elif kind == "chat.agent_joined":
        state["jn"] = _min(state.get("jn"), at_ms)
        if event.get("agent_id"):  # the first agent (answered it) and the one who has it now
            state["af"] = _earliest(state.get("af"), [at_ms, digest, event["agent_id"]])
            state["ag"] = _latest(state.get("ag"), [at_ms, digest, event["agent_id"]])
    elif kind == "chat.message" and event.get("sender") == "agent":
        state["am"] = _min(state.get("am"), at_ms)
    elif kind == "chat.transferred":
        state["tr"] = True
    elif kind == "chat.ended":
        state["en"] = _earliest(state.get("en"), [at_ms, digest, bool(event.get("resolved", False))])
    return True


def chat_facts(state: State, rules: LifecycleRules) -> list[Fact]:
    started = state.get("st")
    if not started:  # missing history: no wait, abandonment or FCR figure
        return []
    channel = _channel(state, started)
    joined: int | None = state.get("jn")
    agent_message: int | None = state.get("am")
    ended = state.get("en")
    if ended:  # an agent who joins or writes after the end answered nobody
        joined = joined if joined is not None and joined <= ended[0] else None
        agent_message = agent_message if agent_message is not None and agent_message <= ended[0] else None
    # An agent's message proves an agent joined, even if the platform sent no join event.
    agent_in = min((t for t in (joined, agent_message) if t is not None), default=None)
    t0 = started[0]
    facts: list[Fact] = [(channel, t0, "chat_started", 0, 0)]
    if agent_message is not None:
        ms = max(0, agent_message - t0)
        queue = started[3] if len(started) > 3 else None  # the queue chat.started named
        ok = ms <= rules.sla.target_ms("chat_first_response", channel, "normal", queue)
        facts.append((channel, agent_message, "chat_first_response", ms, int(ok)))
    if agent_in is not None:
        wait = max(0, agent_in - t0)
        facts.append((channel, agent_in, "chat_wait", wait, 0))
        facts.append(
            (
                channel,
                agent_in,
                "service_level",
                wait,
                int(rules.service_level.judge(channel, wait, True) or 0),
            )
        )
    if ended:
        no_agent = agent_in is None
        if no_agent and not ended[2]:  # abandoned: in the service level unless a short abandon
            waited = max(0, ended[0] - t0)
            if rules.service_level.judge(channel, waited, False) is not None:
                facts.append((channel, ended[0], "service_level", waited, 0))
        if no_agent and ended[2]:  # resolved by self-service (a bot): contained, not abandoned
            facts.append((channel, ended[0], "chat_ended", 0, CONTAINED))
        else:
            facts.append((channel, ended[0], "chat_ended", 0, ABANDONED if no_agent else ANSWERED))
        if ended[2] and not no_agent:
            # FCR is the agents' first-contact resolution: a contained chat is measured
            # by containment instead (counting it here would flatter FCR).
            first_contact = not state.get("tr", False)
            facts.append((channel, ended[0], "resolved_contact", 0, int(first_contact)))
    return facts


def chat_live(state: State, rules: LifecycleRules) -> list[Fact]:
    """A chat waiting now (started, no agent yet, not ended): `chat_waiting` at its start."""
    started = state.get("st")
    if not started or state.get("en") or state.get("jn") is not None or state.get("am") is not None:
        return []
    return [(_channel(state, started), started[0], "chat_waiting", 0, 0)]


def emitted_live(state: State) -> list[Fact]:
    """The live facts last emitted for this state (kept in it as "lv"), so they are
    retracted exactly even after the SLA targets or calendars were changed."""
    return [(str(c), int(t), str(k), 0, 0) for c, t, k in state.get("lv", [])]


def counted_windowed(state: State) -> list[Fact] | None:
    """The windowed facts last counted for this state (kept in it as "wf"), so a
    later event retracts exactly what was counted even after the rules that judge
    them changed (SLA targets, service-level thresholds, calendars, the FCR reopen
    window). None: a state stored before they were kept (recompute them)."""
    kept = state.get("wf")
    if kept is None:
        return None
    return [(str(c), int(t), str(k), int(v), int(f)) for c, t, k, v, f in kept]


def keep_windowed(state: State, facts: list[Fact]) -> None:
    if facts:
        state["wf"] = [list(f) for f in facts]
    else:
        state.pop("wf", None)


def keep_live(state: State, live: list[Fact]) -> None:
    if live:
        state["lv"] = [[f[0], f[1], f[2]] for f in live]
    else:
        state.pop("lv", None)


def incomplete(kind: str, state: State) -> bool:
    """Closed, but its start was never seen: left out of every windowed figure."""
    if kind == "ticket":
        return "rs" in state and "cr" not in state
    if kind == "chat":
        return "en" in state and "st" not in state
    return False


def became_incomplete(kind: str, before: State | None, after: State | None) -> bool:
    """Did a change of state (say, one batch of events) leave the contact closed
    without its start, where it was not so before? Judged over the whole change,
    so a start that arrives in the same batch as the closure is not a sighting."""
    return after is not None and incomplete(kind, after) and not (before and incomplete(kind, before))


# --- surveys -----------------------------------------------------------------


def survey_version(event: dict[str, Any], at_ms: int, scale: int) -> list[Any]:
    """One version of a response: [time, event_id, channel, survey, score, scale, queue, agent]."""
    return [
        at_ms,
        event["event_id"],
        event["channel"],
        event["survey"],
        int(event["score"]),
        scale,
        event.get("queue"),
        event.get("agent_id"),
    ]


def apply_survey_version(state: State, version: list[Any]) -> bool:
    """Keep the version with the latest occurred_at, ties to the greatest event_id
    (SPEC §3 re-rating), whatever the arrival order. False when this very version
    was already applied (a replay)."""
    if _first_sight(state, version[1], version[0]) is None:
        return False
    current: list[Any] | None = state.get("v")
    if "qu" not in state and current is not None and len(current) > 6 and current[6] is not None:
        state["qu"] = [current[0], current[1], current[6]]  # a state stored before "qu" was kept
    if current is None or version[:2] > current[:2]:
        state["v"] = version
    if version[6] is not None:  # a re-rating that names no queue leaves the response where it was
        state["qu"] = _latest(state.get("qu"), [version[0], version[1], version[6]])
    return True


def apply_survey_offer(state: State, event: dict[str, Any], at_ms: int) -> bool:
    """`survey.offered`: the earliest offer of this response id is kept
    ([time, event hash, channel, survey, queue]). False for a replay."""
    digest = _first_sight(state, event["event_id"], at_ms)
    if digest is None:
        return False
    state["of"] = _earliest(
        state.get("of"), [at_ms, digest, event["channel"], event["survey"], event.get("queue")]
    )
    return True


def survey_facts(state: State) -> list[Fact]:
    """The counted response (`csat`/`nps`/`ces` at its time), and the offer
    (`survey_offered` at the offer's time, flag 1 once answered): the response rate
    is over the surveys offered in a window, the share answered so far."""
    facts: list[Fact] = []
    version = state.get("v")
    if version:
        at_ms, channel, survey, score, scale = version[0], version[2], version[3], version[4], version[5]
        facts.append((channel, at_ms, survey, score, scale))
    offer = state.get("of")
    if offer:
        facts.append((offer[2], offer[0], "survey_offered", 0, int(bool(version))))
    return facts


# --- expiry ------------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    """How long state is held after its last event (event-time ms).

    closed_ms: closed tickets/chats, at least the window retention (late events
      still land) and the FCR reopen window (a reopen still revokes the credit);
    open_ms: open tickets/chats, a safety TTL (each drop is counted by the caller);
    survey_ms: survey responses, the window retention (a re-rating or replay
      older than that is dead-lettered `too_late`).
    """

    closed_ms: int
    open_ms: int
    survey_ms: int

    @classmethod
    def of(cls, retention_ms: int, rules: LifecycleRules, open_ttl_ms: int) -> Keep:
        return cls(max(retention_ms, rules.fcr_reopen_ms), max(open_ttl_ms, retention_ms), retention_ms)


def is_open(kind: str, state: State) -> bool:
    if kind == "ticket":
        return ticket_is_open(state)
    if kind == "chat":
        return state.get("en") is None
    return False


def expires_at(kind: str, state: State, keep: Keep) -> int | None:
    """When the state may go (event-time ms); None: no event time yet."""
    if "lt" not in state:
        return None
    if kind == "survey":
        return int(state["lt"]) + keep.survey_ms
    return int(state["lt"]) + (keep.open_ms if is_open(kind, state) else keep.closed_ms)


def expired(kind: str, state: State, now_ms: int, keep: Keep) -> bool:
    deadline = expires_at(kind, state, keep)
    return deadline is not None and now_ms > deadline
