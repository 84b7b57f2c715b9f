"""The queue dimension (SPEC §4): a queue's figures equal the figures computed from
scratch over only the contacts in that queue, for any arrival order, with queues
outside the list reported as `other`, contacts moved between queues, re-rated
surveys and restarts."""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_app.core.intake import Accepted, Intake
from stream_app.core.lifecycle import event_hash
from stream_app.core.queues import OTHER, PREFIX, SEP, Queues, internal, public
from stream_app.core.replay import Replay
from stream_app.core.timeutil import parse_rfc3339_ms
from stream_app.core.windows import Timeline
from tests.factories import encode, event
from tests.unit.conftest import _SCHEMAS, CHANNELS, WINDOWS
from tests.unit.test_order_independence import NOW, RULES, streams

LISTED = ("billing", "tech")
QUEUES = Queues(frozenset(LISTED))
#: What events may name: listed queues, one that is not listed, or none at all.
NAMED = st.sampled_from(["billing", "tech", "vip", None])
ID_FIELD = {"cx.tickets": "ticket_id", "cx.chats": "chat_id", "cx.surveys": "response_id"}


def _intake(queues: Queues) -> Intake:
    return Intake(_SCHEMAS, CHANNELS, Timeline(WINDOWS), RULES, queues=queues)


def _snapshots(records: list[tuple[str, dict[str, Any]]], queues: Queues, restart_at: int = -1) -> Any:
    replay = Replay(_intake(queues), NOW)
    for i, (topic, ev) in enumerate(records):
        replay.feed(topic, encode(ev), NOW)
        if i == restart_at:  # state back from its encoded changelog form, after a sweep
            replay.flush()
            for kind, store in replay.stores.items():
                replay.intake.expire(kind, store, NOW)
                replay.stores[kind] = orjson.loads(orjson.dumps(store))
    return {(s["channel"], s["window"]): s for s in replay.snapshots(NOW)}


def _queue_of_contact(events: list[tuple[str, dict[str, Any]]]) -> str:
    """The reported queue: the latest event naming one (time, then event-id hash;
    a survey: its latest answer naming one, latest time then greatest event id)."""
    if events[0][0] == "cx.surveys":
        answers = [
            ev for _, ev in events if ev["event_type"] == "survey.submitted" and ev.get("queue") is not None
        ]
        if answers:  # latest time, then greatest event id
            latest = max(answers, key=lambda ev: (parse_rfc3339_ms(ev["occurred_at"]), ev["event_id"]))
            return QUEUES.label(latest["queue"])
        # no answer naming a queue: the earliest offer's (time, then event-id hash)
        offers = [ev for _, ev in events if ev["event_type"] == "survey.offered"]
        if not offers:
            return OTHER
        offer = min(offers, key=lambda ev: (parse_rfc3339_ms(ev["occurred_at"]), event_hash(ev["event_id"])))
        return QUEUES.label(offer.get("queue"))
    naming = [ev for _, ev in events if ev.get("queue") is not None]
    if not naming:
        return OTHER
    latest_ev = max(naming, key=lambda ev: (parse_rfc3339_ms(ev["occurred_at"]), event_hash(ev["event_id"])))
    return QUEUES.label(latest_ev["queue"])


def _figures(snap: dict[str, Any] | None) -> Any:
    """A snapshot's figures without its series name and time; None when it shows nothing."""
    if snap is None:
        return None
    figures = {k: v for k, v in snap.items() if k not in ("channel", "as_of")}
    return None if _empty(figures) else figures


def _empty(node: Any) -> bool:
    if isinstance(node, dict):
        return all(_empty(v) for k, v in node.items() if k != "window")
    return node in (None, 0, 0.0) or (isinstance(node, list) and not node)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.data())
def test_a_queue_s_figures_equal_its_contacts_computed_alone(records: Any, data: Any) -> None:
    named = [(topic, {**ev, "queue": q} if (q := data.draw(NAMED)) else ev) for topic, ev in records]
    by_contact: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for topic, ev in named:
        by_contact.setdefault((topic, str(ev[ID_FIELD[topic]])), []).append((topic, ev))
    shuffled = data.draw(st.permutations(named))
    restart_at = data.draw(st.integers(-1, max(0, len(named) - 1)))
    got = _snapshots(list(shuffled), QUEUES, restart_at)
    for queue in (*LISTED, OTHER):
        alone = [r for events in by_contact.values() if _queue_of_contact(events) == queue for r in events]
        expected = _snapshots(alone, Queues())
        for window in ("15m", "1h", "24h", "today"):
            want = _figures(expected.get(("all", window)))
            assert _figures(got.get((f"queue:{queue}", window))) == want, (queue, window)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_queues_leave_the_channels_and_the_rollup_as_they_were(records: Any) -> None:
    named = [(topic, {**ev, "queue": "billing"}) for topic, ev in records]
    with_queues = _snapshots(named, QUEUES)
    without = _snapshots(named, Queues())
    assert {k: _figures(v) for k, v in with_queues.items() if not k[0].startswith("queue:")} == {
        k: _figures(v) for k, v in without.items()
    }


def test_queue_snapshots_are_shown_with_a_queue_and_no_channel() -> None:
    snap = {"channel": "queue:billing", "window": "1h", "csat": {"value": 0.5}}
    shown = public(snap)
    assert shown == {"queue": "billing", "window": "1h", "csat": {"value": 0.5}}
    assert internal(shown) == snap
    assert public({"channel": "chat", "window": "1h"}) == {"channel": "chat", "window": "1h"}


@pytest.mark.parametrize(("raw", "label"), [("billing", "billing"), ("vip", OTHER), (None, OTHER)])
def test_unlisted_and_missing_queues_are_other(raw: str | None, label: str) -> None:
    assert QUEUES.label(raw) == label


def test_a_queue_removed_from_the_list_hands_its_contacts_to_other_exactly() -> None:
    """Counted under `tech`, then STREAM_APP_QUEUES loses `tech` (a restart): at the
    ticket's next event its figures leave `tech` and join `other`, never retracted
    from a series they were not counted in (no negative counts)."""
    from tests.factories import event

    t0 = NOW - 30 * 60_000
    replay = Replay(_intake(Queues(frozenset({"billing", "tech"}))), NOW)
    replay.feed("cx.tickets", encode(event("ticket.created", t0, "email", ticket_id="t", queue="tech")), NOW)
    replay.snapshots(NOW)
    replay.intake = _intake(Queues(frozenset({"billing"})))  # restarted with a shorter list
    replay.feed("cx.tickets", encode(event("ticket.agent_replied", t0 + 60_000, "email", ticket_id="t")), NOW)
    snaps = {(s["channel"], s["window"]): s for s in replay.snapshots(NOW)}
    assert snaps[("queue:other", "1h")]["volume"]["tickets"] == 1
    assert snaps[("queue:other", "1h")]["first_response_seconds"]["n"] == 1
    assert snaps[("queue:tech", "1h")]["volume"]["tickets"] == 0
    assert snaps[("queue:tech", "1h")]["open_tickets"] == 0
    assert all(v >= 0 for s in snaps.values() for v in (s["volume"]["tickets"], s["open_tickets"]))


#: Queue lists a deployment may restart with: another list, a shorter one, none (off).
CONFIGS = st.sampled_from(
    [
        Queues(frozenset({"billing", "tech"})),
        Queues(frozenset({"billing", "vip"})),
        Queues(frozenset({"tech"})),
        Queues(frozenset({"vip", "sales"})),
        Queues(),
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.data(), CONFIGS, CONFIGS)
def test_a_restart_with_another_queue_list_equals_counting_with_it_from_the_start(
    records: Any, data: Any, before: Queues, after: Queues
) -> None:
    """STREAM_APP_QUEUES changed (or turned on or off) at a restart: every series
    (channels, `all`, each queue and `other`) equals counting every event with the new
    list from the start; a queue no longer listed is left empty."""
    named = [(topic, {**ev, "queue": q} if (q := data.draw(NAMED)) else ev) for topic, ev in records]
    shuffled = data.draw(st.permutations(named))
    restart_at = data.draw(st.integers(0, len(shuffled)))
    replay = Replay(_intake(before), NOW)
    for topic, ev in shuffled[:restart_at]:
        replay.feed(topic, encode(ev), NOW)
    replay.snapshots(NOW)  # the old series counted and applied first
    # The stage relabels in chunks: some contacts only after events reached them.
    stored = [(kind, key) for kind, store in replay.stores.items() for key in store]
    later = set(data.draw(st.lists(st.sampled_from(stored), unique=True)) if stored else [])
    relabel_after = data.draw(st.integers(restart_at, len(shuffled)))
    replay.intake = _intake(after)
    for kind, store in replay.stores.items():
        now_keys = [key for key in store if (kind, key) not in later]
        replay.partials.add(replay.intake.relabel_keys(kind, store, now_keys, NOW), "")
    for i, (topic, ev) in enumerate(shuffled[restart_at:], start=restart_at):
        if i == relabel_after:
            _relabel_later(replay, later)
        replay.feed(topic, encode(ev), NOW)
    if relabel_after == len(shuffled):
        _relabel_later(replay, later)
    got = {(s["channel"], s["window"]): _figures(s) for s in replay.snapshots(NOW)}
    fresh = {k: _figures(v) for k, v in _snapshots(list(shuffled), after).items()}
    assert {k: v for k, v in got.items() if v is not None} == {
        k: v for k, v in fresh.items() if v is not None
    }
    for queue in [*sorted(before.names | {OTHER})] if before.enabled else []:
        if PREFIX + queue not in after.all_series():
            assert all(v is None for (series, _), v in got.items() if series == PREFIX + queue), queue


def test_an_event_before_the_relabel_with_queues_turned_off_moves_the_contact_once() -> None:
    """Queues on, then off: the ticket's next event comes before its relabel turn and
    moves it to the plain channel series; its relabel turn and a later restart with
    queues on again must not move it a second time (found by a review helper: the
    stale label left a negative `queue:billing`)."""
    from tests.factories import event

    t0 = NOW - 30 * 60_000
    events = [
        event("ticket.created", t0, "email", ticket_id="t", queue="billing"),
        event("ticket.agent_replied", t0 + 60_000, "email", ticket_id="t", agent_id="a1"),
        event("ticket.customer_replied", t0 + 120_000, "email", ticket_id="t"),
    ]
    on, off = Queues(frozenset({"billing", "tech"})), Queues()
    replay = Replay(_intake(on), NOW)
    replay.feed("cx.tickets", encode(events[0]), NOW)
    replay.snapshots(NOW)
    replay.intake = _intake(off)  # restarted with queues off; the event comes first
    replay.feed("cx.tickets", encode(events[1]), NOW)
    replay.restart(_intake(off), NOW)  # its relabel turn
    replay.feed("cx.tickets", encode(events[2]), NOW)
    replay.restart(_intake(on), NOW)  # and on again
    got = {(s["channel"], s["window"]): _figures(s) for s in replay.snapshots(NOW)}
    fresh = {k: _figures(v) for k, v in _snapshots([("cx.tickets", ev) for ev in events], on).items()}
    assert {k: v for k, v in got.items() if v is not None} == {
        k: v for k, v in fresh.items() if v is not None
    }


def _relabel_later(replay: Replay, keys: set[tuple[str, str]]) -> None:
    """The later chunks: contacts relabelled after some events were applied."""
    for kind, store in replay.stores.items():
        due = [key for key in store if (kind, key) in keys]
        replay.partials.add(replay.intake.relabel_keys(kind, store, due, NOW), "")


def test_an_answer_naming_no_queue_is_counted_in_its_offer_s_queue() -> None:
    from tests.factories import event, survey

    replay = Replay(_intake(QUEUES), NOW)
    offer = event("survey.offered", NOW - 20 * 60_000, "email", response_id="r1", survey="csat", queue="tech")
    replay.feed("cx.surveys", encode(offer), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 5, NOW - 19 * 60_000, "email", response_id="r1")), NOW)
    snaps = {(s["channel"], s["window"]): s for s in replay.snapshots(NOW)}
    assert snaps[("queue:tech", "1h")]["csat"]["n"] == 1
    assert snaps[("queue:tech", "1h")]["response_rate"]["value"] == 1.0
    assert ("queue:other", "1h") not in snaps or snaps[("queue:other", "1h")]["csat"]["n"] == 0


def test_a_re_rating_naming_no_queue_leaves_the_response_in_its_queue() -> None:
    """A new-user helper's case: the first answer names billing, a re-rating five
    minutes later names none; the response stays in billing (as a contact stays in
    the queue its latest event naming one gave it), whatever the arrival order."""
    from tests.factories import survey

    first = survey("csat", 5, NOW - 10 * 60_000, "email", response_id="r9", queue="billing")
    again = survey("csat", 4, NOW - 5 * 60_000, "email", response_id="r9")
    for order in ([first, again], [again, first]):
        replay = Replay(_intake(QUEUES), NOW)
        for ev in order:
            replay.feed("cx.surveys", encode(ev), NOW)
        snaps = {(s["channel"], s["window"]): s for s in replay.snapshots(NOW)}
        assert snaps[("queue:billing", "15m")]["csat"] == snaps[("email", "15m")]["csat"]
        assert (
            snaps[("queue:billing", "15m")]["csat"]["n"] == 1
            and snaps[("queue:billing", "15m")]["csat"]["value"] == 1.0
        )
        assert ("queue:other", "15m") not in snaps or snaps[("queue:other", "15m")]["csat"]["n"] == 0


def test_a_survey_stored_before_its_queue_was_kept_keeps_its_queue() -> None:
    """A survey state written before "qu" was kept (the counted version names
    billing): a later re-rating naming no queue leaves it in billing."""
    from tests.factories import survey

    replay = Replay(_intake(QUEUES), NOW)
    replay.feed(
        "cx.surveys",
        encode(survey("csat", 5, NOW - 10 * 60_000, "email", response_id="r9", queue="billing")),
        NOW,
    )
    for state in replay.stores["survey"].values():
        state.pop("qu")  # as an older version stored it
    replay.feed("cx.surveys", encode(survey("csat", 4, NOW - 5 * 60_000, "email", response_id="r9")), NOW)
    snaps = {(s["channel"], s["window"]): s for s in replay.snapshots(NOW)}
    assert snaps[("queue:billing", "15m")]["csat"]["n"] == 1


def test_no_queue_series_exist_while_the_dimension_is_off() -> None:
    assert Queues().all_series() == []
    assert QUEUES.all_series() == ["queue:billing", "queue:other", "queue:tech"]


def test_a_contact_in_one_queue_has_its_label_beside_its_facts_and_a_move_names_both() -> None:
    """Stage 1 passes the queue label beside a contact's channel facts
    (`Accepted.queue`), not written into each fact's series; only a move out of a
    queue that already counted facts writes `<channel>\\x1f<queue>` series."""
    intake = _intake(QUEUES)
    store: dict[str, Any] = {}

    def apply(name: str, minutes: int, **fields: Any) -> Accepted:
        raw = encode(event(name, NOW - minutes * 60_000, "email", ticket_id="t1", **fields))
        decoded = intake.read("cx.tickets", raw, NOW)
        outcome = intake.apply("cx.tickets", decoded, store, NOW)  # type: ignore[arg-type]
        assert isinstance(outcome, Accepted)
        return outcome

    created = apply("ticket.created", 30, queue="billing")
    assert created.queue == "billing" and created.delta
    assert {fact[0] for fact, _ in created.delta} == {"email"}
    moved = apply("ticket.agent_replied", 20, queue="tech", agent_id="a1")
    assert moved.queue == ""
    series = {fact[0] for fact, sign in moved.delta if not fact[0].startswith("agent:")}
    assert series == {f"email{SEP}billing", f"email{SEP}tech"}
