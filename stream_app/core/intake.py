"""From raw input bytes to signed metric facts: decode, validate, classify, fold.

Every record gets exactly one outcome: accepted (with the facts it changed),
duplicate, or rejected with a dead-letter reason code from SPEC §2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from stream_app.core import agents, lifecycle
from stream_app.core.aggregate import LIVE_KINDS, Fact, fact_delta
from stream_app.core.event_types import fast_valid
from stream_app.core.formulas import SCALES, score_range
from stream_app.core.lifecycle import Keep, LifecycleRules, State
from stream_app.core.queues import Queues, in_queue
from stream_app.core.timeutil import DAY_MS, parse_rfc3339_ms
from stream_app.core.windows import Timeline

#: input topic → (schema name, entity kind, id field)
INPUTS: dict[str, tuple[str, str, str]] = {
    "cx.tickets": ("ticket", "ticket", "ticket_id"),
    "cx.chats": ("chat", "chat", "chat_id"),
    "cx.surveys": ("survey", "survey", "response_id"),
}
MAX_DETAIL = 300


def schema_dir() -> Path:
    """`schemas/` packaged inside the wheel, or at the repository root in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if (candidate / "ticket.v1.json").is_file():
            return candidate
    raise FileNotFoundError("schemas/ not found next to the package or the checkout")


class Schemas:
    """JSON Schema validators, compiled once per file (never per message).

    `Intake.decode` asks them only about what the msgspec types of
    `core/event_types.py` refuse (the fast path, for nearly every valid record).
    Here, valid documents are checked by fastjsonschema, which compiles a
    schema to plain Python and is ~20x faster than the jsonschema interpreter; the
    dead-letter detail for an invalid one comes from jsonschema's `best_match`.
    Our schemas only use keywords that mean the same in draft-07 (fastjsonschema's
    newest) as in 2020-12; a property test checks both agree.
    """

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or schema_dir()
        self.validators: dict[str, Draft202012Validator] = {}
        self.fast: dict[str, Callable[[Any], Any]] = {}
        for path in sorted(directory.glob("*.v1.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
            name = path.name.removesuffix(".v1.json")
            self.validators[name] = Draft202012Validator(schema)
            draft7 = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
            self.fast[name] = fastjsonschema.compile(draft7, use_formats=False)

    def is_valid(self, name: str, document: Any) -> bool:
        try:
            self.fast[name](document)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def error(self, name: str, document: Any) -> str | None:
        """The most relevant violation as one line, or None when valid."""
        if self.is_valid(name, document):
            return None
        validator = self.validators[name]
        if validator.is_valid(document):  # the two disagree: trust the reference
            return None
        error = best_match(validator.iter_errors(document))
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return f"{where}: {error.message}"[:MAX_DETAIL]


#: Every dead-letter reason code (`x-error-reason`).
REASONS = ("invalid_json", "schema", "unknown_channel", "score_out_of_range", "too_late", "from_future")


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: str

    def __post_init__(self) -> None:
        # Metrics pre-declare one series per reason: an undeclared one would be a new label.
        if self.reason not in REASONS:
            raise ValueError(f"undeclared dead-letter reason {self.reason!r}")


@dataclass
class Accepted:
    """An applied event and the signed facts it changed (may be empty).

    With queues, `queue` is the label the contact's channel facts are also counted
    under (`Partials.add` counts them in their channel and in `queue:<label>`; '' :
    their channel only). A contact that moved to another queue leaves `queue` empty
    and carries the series `<channel>\x1f<queue>` in its facts instead
    (`queues.in_queue`): out of the old queue, into the new one."""

    delta: list[tuple[Fact, int]] = field(default_factory=list)
    queue: str = ""


DUPLICATE = "duplicate"
Outcome = Accepted | Rejected | str


@dataclass(frozen=True)
class Decoded:
    event: dict[str, Any]
    at_ms: int
    entity_id: str


class Intake:
    def __init__(
        self,
        schemas: Schemas,
        channels: frozenset[str],
        timeline: Timeline,
        rules: LifecycleRules,
        open_ttl_ms: int = 30 * DAY_MS,
        queues: Queues | None = None,
        agent_figures: bool = True,
    ) -> None:
        self.queues = queues or Queues()
        #: Copy facts to agent series (core/agents.py); off: no agent figures at all.
        self.agent_figures = agent_figures
        self.schemas = schemas
        self.channels = channels
        self.timeline = timeline
        self.rules = rules
        self.keep = Keep.of(timeline.retention_ms, rules, open_ttl_ms)

    def decode(self, topic: str, raw: bytes | None, now_ms: int) -> Decoded | Rejected:
        schema_name, _, id_field = INPUTS[topic]
        if not raw:
            return Rejected("invalid_json", "empty record value")
        valid = fast_valid(schema_name, raw)  # nearly always; else the schemas decide
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Rejected("invalid_json", str(exc)[:MAX_DETAIL])
        if not valid:
            problem = self.schemas.error(schema_name, event)
            if problem is not None:
                return Rejected("schema", problem)
        try:
            at_ms = parse_rfc3339_ms(event["occurred_at"])
        except ValueError as exc:
            return Rejected("schema", f"occurred_at: {exc}"[:MAX_DETAIL])
        if event["channel"] not in self.channels:
            allowed = ",".join(sorted(self.channels))
            return Rejected("unknown_channel", f"channel {event['channel']!r} not in {allowed}")
        if schema_name == "survey" and event["event_type"] == "survey.submitted":
            survey = event["survey"]
            scale = int(event.get("scale") or SCALES[survey][0])
            low, high = score_range(survey, scale)
            if not low <= event["score"] <= high:
                return Rejected(
                    "score_out_of_range",
                    f"{survey} score {event['score']} outside {low}-{high} (scale {scale})",
                )
        late = self.timeline.lateness(at_ms, now_ms)
        if late == "too_late" and schema_name != "survey":
            # A ticket/chat event older than the windows still updates its state
            # (backlog, reopen revocation); only its window contributions go (SPEC §3).
            late = None
        if late is not None:
            return Rejected(late, f"occurred_at {event['occurred_at']} is {_lateness_text(late)}")
        return Decoded(event, at_ms, str(event[id_field]))

    def apply(self, topic: str, decoded: Decoded, store: MutableMapping[str, State], now_ms: int) -> Outcome:
        """Fold a valid event into its entity's state in `store`; return the fact delta.

        Facts in buckets older than retention (`now_ms`) are left out of the delta:
        no window holds them any more.
        """
        _, kind, _ = INPUTS[topic]
        event, at_ms, key = decoded.event, decoded.at_ms, decoded.entity_id
        state = store.get(key) or {}
        queue_before = self._reported_queue(kind, state)
        roles_before = lifecycle.agents_of(kind, state) if state and self._credited(state) else {}
        before = self._counted_facts(kind, state)
        if kind == "survey":
            if event["event_type"] == "survey.offered":
                if not lifecycle.apply_survey_offer(state, event, at_ms):
                    return DUPLICATE
            else:
                survey = event["survey"]
                scale = int(event.get("scale") or SCALES[survey][0])
                if not lifecycle.apply_survey_version(state, lifecycle.survey_version(event, at_ms, scale)):
                    return DUPLICATE
            after = lifecycle.survey_facts(state)
        else:
            facts = lifecycle.ticket_facts if kind == "ticket" else lifecycle.chat_facts
            live = lifecycle.ticket_live if kind == "ticket" else lifecycle.chat_live
            fold = lifecycle.apply_ticket_event if kind == "ticket" else lifecycle.apply_chat_event
            if not fold(state, event, at_ms):
                return DUPLICATE
            now_live = live(state, self.rules)
            now_windowed = facts(state, self.rules)
            lifecycle.keep_live(state, now_live)
            lifecycle.keep_windowed(state, now_windowed)
            after = [*now_windowed, *now_live]
        queue_after = self._wanted_queue(kind, state)
        _store_label(state, queue_after)
        state["ac"] = int(self.agent_figures)
        store[key] = state
        queue = queue_after
        if queue_before == queue_after or not before:  # (nothing counted yet: nothing to move)
            delta = fact_delta(before, after)
        else:  # moved to another queue: all its facts leave the old one for the new one
            delta = fact_delta(_in(before, queue_before), _in(after, queue_after))
            queue = ""
        roles_after = lifecycle.agents_of(kind, state) if self.agent_figures else {}
        if roles_before or roles_after:
            delta.extend(
                fact_delta(
                    agents.credited(kind, before, roles_before, queue_before),
                    agents.credited(kind, after, roles_after, queue_after),
                )
            )
        return Accepted(self._held(delta, now_ms), queue)

    def _reported_queue(self, kind: str, state: State) -> str:
        """The queue label the contact's facts are counted under ('': in the plain
        channel series, counted while the queue dimension was off): the one stored
        when they were counted (`ql`). A new contact (no state yet) gets the label its
        first event gives it."""
        if not state:
            return self._wanted_queue(kind, state)
        stored = state.get("ql")
        return "" if stored is None else str(stored)

    def _wanted_queue(self, kind: str, state: State) -> str:
        """The label the configured queues give the contact now ('' without queues)."""
        return self.queues.label(lifecycle.queue_of(kind, state)) if self.queues.enabled else ""

    def _credited(self, state: State) -> bool:
        """Were the contact's facts credited to its agents when they were counted
        (`ac`)? Only credits that were given are taken back: a contact counted while
        agent figures were off credits nobody until its next event, and then its
        agents get all of its facts. A state stored before `ac` was kept: as
        configured now."""
        flag = state.get("ac")
        return self.agent_figures if flag is None else bool(flag)

    def _counted_facts(self, kind: str, state: State) -> list[Fact]:
        """The facts the contact's state has counted, as they were counted: with the
        judgments of the rules in force then (an SLA target or service-level threshold
        changed since must not change what a later event retracts)."""
        if kind == "survey":
            return lifecycle.survey_facts(state)  # judged by no rule
        if not state:
            return []
        windowed = lifecycle.counted_windowed(state)
        if windowed is None:  # stored before the counted facts were kept
            facts = lifecycle.ticket_facts if kind == "ticket" else lifecycle.chat_facts
            windowed = facts(state, self.rules)
        return [*windowed, *lifecycle.emitted_live(state)]

    def relabel_keys(
        self, kind: str, store: MutableMapping[str, State], keys: Iterable[str], now_ms: int
    ) -> list[tuple[Fact, int]]:
        """Move the given contacts to the queue label the configuration gives them now.

        A contact's facts stay in the series they were counted in (its stored label,
        `ql`) until something moves them. When STREAM_APP_QUEUES changed since (a
        queue was added or removed, or the dimension was turned on or off), that
        label is out of date: a contact of a removed queue would stay in a series no
        longer reported, and the queues would no longer add up to their channels.
        The intake stage calls this for every stored contact of a partition when the
        partition is assigned, before its next event. Returns the signed facts that
        move (out of the old series, into the new one; the channel's own figures are
        unchanged), agent credits included; the states are updated in `store`.
        """
        delta: list[tuple[Fact, int]] = []
        for key in keys:
            state = store.get(key)
            if not state:
                continue
            counted, wanted = self._reported_queue(kind, state), self._wanted_queue(kind, state)
            if counted == wanted:
                continue
            facts = self._counted_facts(kind, state)
            delta.extend(fact_delta(_in(facts, counted), _in(facts, wanted)))
            roles = lifecycle.agents_of(kind, state) if self._credited(state) else {}
            if roles:
                delta.extend(
                    fact_delta(
                        agents.credited(kind, facts, roles, counted),
                        agents.credited(kind, facts, roles, wanted),
                    )
                )
            _store_label(state, wanted)
            store[key] = state
        return self._held(delta, now_ms)

    def _held(self, delta: list[tuple[Fact, int]], now_ms: int) -> list[tuple[Fact, int]]:
        """The delta without facts in buckets retention no longer holds (live-queue facts stay)."""
        oldest = self.timeline.oldest_bucket(now_ms)
        return [item for item in delta if item[0][1] >= oldest or item[0][2] in LIVE_KINDS]

    def read(self, topic: str, raw: bytes | None, now_ms: int) -> Decoded | Rejected:
        """`decode`, with documents too deep to validate rejected instead of raising."""
        try:
            return self.decode(topic, raw, now_ms)
        except RecursionError:  # parses (orjson allows 1,024 levels) but too deep to check
            return Rejected("schema", "(root): nested too deeply to validate")

    def process(
        self, topic: str, raw: bytes | None, now_ms: int, store: MutableMapping[str, State]
    ) -> Outcome:
        decoded = self.read(topic, raw, now_ms)
        if isinstance(decoded, Rejected):
            return decoded
        return self.apply(topic, decoded, store, now_ms)

    def expire(
        self, kind: str, store: MutableMapping[str, State], now_ms: int
    ) -> tuple[list[str], list[tuple[Fact, int]], int]:
        """Drop finished (or abandoned) state; see `expire_keys`."""
        return self.expire_keys(kind, store, list(store), now_ms)

    def expire_keys(
        self, kind: str, store: MutableMapping[str, State], keys: list[str], now_ms: int
    ) -> tuple[list[str], list[tuple[Fact, int]], int]:
        """Drop the given keys' state where it is past its deadline (`Keep`).

        Returns the keys dropped, the live-queue facts to retract (backlog, due
        times, waiting chats: windowed facts stay in their buckets, which age out
        on their own) and how many of the dropped were still open (the open
        safety TTL ran out: counted, never silent).
        """
        gone: list[str] = []
        retract: list[tuple[Fact, int]] = []
        still_open = 0
        for key in keys:
            state = store.get(key)
            if state is not None and lifecycle.expired(kind, state, now_ms, self.keep):
                gone.append(key)
                if lifecycle.is_open(kind, state):
                    still_open += 1
                emitted = _in(lifecycle.emitted_live(state), self._reported_queue(kind, state))
                retract.extend((f, -1) for f in emitted)
        for key in gone:
            del store[key]
        return gone, retract, still_open


def _store_label(state: State, label: str) -> None:
    """Keep the label the contact's facts are counted under from now on (`ql`; none:
    the plain channel series, the dimension is off)."""
    if label:
        state["ql"] = label
    else:
        state.pop("ql", None)


def _in(facts: list[Fact], label: str) -> list[Fact]:
    """Facts in the series they are counted under: `<channel>\x1f<label>`
    (`queues.in_queue`), or the plain channel for the label ''."""
    return in_queue(facts, label) if label else facts


def _lateness_text(reason: str) -> str:
    return "older than retention" if reason == "too_late" else "too far in the future"
