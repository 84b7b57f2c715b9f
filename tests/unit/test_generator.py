"""The synthetic demo traffic looks like a real contact-center floor (docs/demo-traffic.md).

Measured on the pure core, no broker: the generator's events go through
`Intake.process` into dict stores and `Partials`/`Scoreboard`, as the worker's do.
Each test checks one thing a new user of the demo saw wrong, over days of simulated
time at a modest rate: a backlog that hovers (Little's law) instead of growing,
email FCR well below chat's, pending/on-hold statuses, SLA breaches, agents' shifts
and an intraday arrival curve.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
import pytest

from stream_app import config
from stream_app.core.intake import INPUTS, Accepted, Intake, Schemas
from stream_app.core.scoreboard import Partials, Scoreboard
from stream_app.core.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, parse_rfc3339_ms
from stream_app.generator import Generator, office_hours

SCHEMAS = Schemas()
#: A Monday, midnight UTC.
T0 = parse_rfc3339_ms("2026-11-23T00:00:00Z")
TWO_HOURS_MS = 2 * HOUR_MS

Record = tuple[int, str, bytes, bytes]
Snapshots = dict[tuple[str, str], dict[str, Any]]


def drive(generator: Generator, start_ms: int, end_ms: int, rate: float, seed: int) -> list[Record]:
    """Contacts arriving at a flat `rate` per second in [start, end), as callers such
    as tests/unit/test_demo_alerts.py drive the generator; every event scheduled up
    to `end_ms`, in time order."""
    arrivals = random.Random(seed)
    t = float(start_ms)
    while t < end_ms:
        generator.new_contact(int(t))
        t += arrivals.expovariate(rate) * 1000
    return list(generator.due(end_ms))


def measure(records: Iterable[Record], checkpoints: list[int]) -> dict[int, Snapshots]:
    """Feed the records, in order, through the core; the score snapshots at each
    checkpoint (keyed by channel and window)."""
    settings = config.load({})
    timeline = settings.timeline()
    intake = Intake(SCHEMAS, frozenset(settings.channels), timeline, settings.lifecycle_rules())
    stores: dict[str, dict[str, Any]] = {kind: {} for _, kind, _ in INPUTS.values()}
    partials = Partials(timeline)
    board: Scoreboard | None = None
    pending = sorted(checkpoints)
    found: dict[int, Snapshots] = {}

    def snapshot(at: int) -> None:
        assert board is not None
        board.advance(at)  # first: buckets retention no longer holds are skipped, not merged
        for channel, partial in partials.drain().items():
            board.apply(channel, partial)
        found[at] = {(s["channel"], s["window"]): s for s in board.snapshots()}

    for at, topic, _, value in records:
        if board is None:
            board = Scoreboard(timeline, at)
        while pending and at > pending[0]:
            snapshot(pending.pop(0))
        outcome = intake.process(topic, value, at, stores[INPUTS[topic][1]])
        assert isinstance(outcome, Accepted), (outcome, value)
        partials.add(outcome.delta, outcome.queue)
    for at in pending:
        snapshot(at)
    return found


def events(records: Iterable[Record]) -> list[dict[str, Any]]:
    return [orjson.loads(value) for _, _, _, value in records]


def ticket_timelines(evs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in evs:
        if "ticket_id" in event and "response_id" not in event:
            found[event["ticket_id"]].append(event)
    return found


def at(event: dict[str, Any]) -> int:
    return parse_rfc3339_ms(event["occurred_at"])


def fcr(snapshots: Snapshots, channel: str, window: str) -> float:
    share = snapshots[(channel, window)]["fcr"]
    assert share["value"] is not None, f"no resolved {channel} contacts in {window}"
    return float(share["value"])


# --- long runs, shared by several tests (cached: each is a few seconds) -------------


@cache
def long_run(seed: int) -> tuple[list[Record], list[Record], Snapshots]:
    """2.5 days of every channel at 0.02 contacts/s (~4,300 contacts), flat arrivals:
    the events up to the end, the rest of those contacts' lives (never fed to the core),
    and the scores at the end, when the 24h window holds a steady day."""
    end = T0 + 60 * HOUR_MS
    generator = Generator(seed)
    records = drive(generator, T0, end, 0.02, seed)
    rest = list(generator.due(end + 60 * DAY_MS))
    return records, rest, measure(records, [end])[end]


@cache
def demo_start(seed: int) -> tuple[list[Record], dict[int, Snapshots]]:
    """The demo's start, as `produce` simulates it at 0.3 contacts/s: the service sees
    the last 10 minutes and everything still in play then (`history`); scores at the
    start and 20 minutes later."""
    start = T0 + 10 * HOUR_MS
    generator = Generator(seed, since_ms=start - 10 * MINUTE_MS)
    arrival = generator.history(start, 0.3)
    while arrival < start + 20 * MINUTE_MS:
        generator.new_contact(int(arrival))
        arrival = generator.next_arrival(arrival, 0.3)
    records = list(generator.due(start + 20 * MINUTE_MS))
    return records, measure(records, [start, start + 20 * MINUTE_MS])


# --- the tests -----------------------------------------------------------------------


def test_every_event_is_schema_valid_and_a_seed_gives_the_same_events() -> None:
    """All event types and ticket statuses occur, every event validates against
    schemas/*.v1.json, with shifts, and with the demo's history; same seed and run id,
    same bytes."""

    def run(seed: int) -> list[Record]:
        shifts = Generator(seed, next_open=office_hours(8, 18), run_id="t")
        records = drive(shifts, T0, T0 + 36 * HOUR_MS, 0.015, seed)
        records += list(shifts.due(T0 + 30 * DAY_MS))  # and the rest of their lives
        demo = Generator(seed + 1, since_ms=T0 + 5 * DAY_MS - 10 * MINUTE_MS, run_id="t")
        demo.history(T0 + 5 * DAY_MS, 0.02)
        return records + list(demo.due(T0 + 5 * DAY_MS))

    records = run(5)
    assert records == run(5)
    kinds = Counter()
    for _, topic, key, value in records:
        document = orjson.loads(value)
        name, _, id_field = INPUTS[topic]
        assert SCHEMAS.error(name, document) is None, document
        assert key.decode() == document[id_field]
        kinds[document["event_type"], document.get("status")] += 1
    expected = {
        ("ticket.created", None),
        ("ticket.agent_replied", None),
        ("ticket.customer_replied", None),
        ("ticket.resolved", None),
        ("ticket.reopened", None),
        ("ticket.status_changed", "pending"),
        ("ticket.status_changed", "on_hold"),
        ("ticket.status_changed", "open"),
        ("chat.started", None),
        ("chat.agent_joined", None),
        ("chat.message", None),
        ("chat.transferred", None),
        ("chat.ended", None),
        ("survey.submitted", None),
    }
    assert expected <= set(kinds), expected - set(kinds)


@pytest.mark.parametrize("seed", [3, 4])
def test_the_open_backlog_hovers_instead_of_growing(seed: int) -> None:
    """Every ticket ends, some after days: after a few days the open count at the same
    hour of the day stays put, near Little's law (arrivals × mean time open)."""
    rate = 0.005  # tickets/s: 18 an hour, email and portal only (no chats: faster)
    days = 6
    end = T0 + days * DAY_MS
    generator = Generator(seed, channels=["email", "portal"])
    records = drive(generator, T0, end, rate, seed)
    noons = [T0 + day * DAY_MS + 12 * HOUR_MS for day in range(days)]
    snapshots = measure(records, noons)
    backlog = [snapshots[noon][("all", "24h")]["open_tickets"] for noon in noons]
    steady = backlog[3:]  # days 4-6: the longest paths (72 h pending, 4-day reopen) are in
    mean = sum(steady) / len(steady)
    assert all(abs(b - mean) <= 0.25 * mean for b in steady), backlog
    assert abs(steady[-1] - steady[0]) <= 0.25 * mean, backlog  # the old generator: +40%

    # Every ticket ends (the rest of their lives: events after the run), and Little's
    # law holds: open ≈ arrival rate × mean time open (from the tickets themselves).
    lives = ticket_timelines(events([*records, *generator.due(end + 60 * DAY_MS)]))
    assert all(t[-1]["event_type"] == "ticket.resolved" for t in lives.values()), "a ticket never ends"
    open_ms = [time_open(t) for t in lives.values() if at(t[0]) < end - 4 * DAY_MS]
    mean_open_ms = sum(open_ms) / len(open_ms)
    expected = rate * mean_open_ms / 1000
    assert 0.75 * expected <= mean <= 1.25 * expected, (backlog, expected)
    # long-tailed: hours for most, days for some
    lives_ms = sorted(at(t[-1]) - at(t[0]) for t in lives.values())
    assert lives_ms[len(lives_ms) // 2] < 12 * HOUR_MS
    assert sum(ms > DAY_MS for ms in lives_ms) >= 0.05 * len(lives_ms)
    assert lives_ms[-1] > 3 * DAY_MS


def time_open(timeline: list[dict[str, Any]]) -> int:
    """How long a ticket was open: created (or reopened) to resolved."""
    total, since = 0, at(timeline[0])
    for event in timeline[1:]:
        if event["event_type"] == "ticket.resolved" and since is not None:
            total, since = total + at(event) - since, None
        elif event["event_type"] == "ticket.reopened":
            since = at(event)
    return total


@pytest.mark.parametrize("seed", [1, 2])
def test_email_fcr_is_well_below_chat_over_a_day(seed: int) -> None:
    """24h window of a steady day: FCR near the published benchmarks (email ~51%,
    phone ~70%, live chat ~76%; docs/demo-traffic.md)."""
    _, _, snapshots = long_run(seed)
    email, portal, chat, phone = (fcr(snapshots, c, "24h") for c in ("email", "portal", "chat", "phone"))
    assert 0.40 <= email <= 0.62, email
    assert 0.38 <= portal <= 0.65, portal
    assert 0.68 <= chat <= 0.86, chat
    assert 0.58 <= phone <= 0.78, phone
    assert email < chat - 0.15
    assert snapshots[("email", "24h")]["fcr"]["n"] >= 150


@pytest.mark.parametrize("seed", [1])
def test_the_demo_does_not_show_email_fcr_of_100_percent(seed: int) -> None:
    """The demo's windows used to count only tickets created in its last minutes (the
    quick ones): email FCR 100%. Tickets still in play at the start come with their
    history, so slow tickets with follow-ups count too."""
    _, snapshots = demo_start(seed)
    end = max(snapshots)
    email, chat = fcr(snapshots[end], "email", "1h"), fcr(snapshots[end], "chat", "1h")
    assert snapshots[end][("email", "1h")]["fcr"]["n"] >= 60
    assert email <= 0.7, email
    assert email < chat - 0.1, (email, chat)


def test_tickets_go_pending_and_on_hold_and_back_to_open() -> None:
    """After an agent reply some tickets wait on the customer (pending), who replies
    (customer_replied plus status open) or goes silent (solved by the automation);
    some wait on a third party (on_hold)."""
    records, rest, _ = long_run(1)
    lives = ticket_timelines(events([*records, *rest]))
    statuses = Counter(e.get("status") for t in lives.values() for e in t)
    assert 0.15 * len(lives) <= statuses["pending"] <= 0.6 * len(lives), statuses
    assert 0.02 * len(lives) <= statuses["on_hold"] <= 0.2 * len(lives), statuses
    answered = silent = 0
    for timeline in lives.values():
        for i, event in enumerate(timeline):
            if event.get("status") != "pending":
                continue
            assert timeline[i - 1]["event_type"] == "ticket.agent_replied"  # set with a reply
            after = timeline[i + 1]  # every ticket ends resolved: a pending one goes on
            if after["event_type"] == "ticket.customer_replied":
                answered += 1
                assert timeline[i + 2].get("status") == "open" and at(timeline[i + 2]) == at(after)
            else:
                silent += 1
                assert after["event_type"] == "ticket.resolved"
                assert at(after) - at(event) >= 72 * HOUR_MS  # bump-bump-solve
    assert answered > 2 * silent > 0, (answered, silent)


@pytest.mark.parametrize("seed", [1, 2])
def test_some_first_replies_and_chats_breach_their_targets(seed: int) -> None:
    """A few tickets wait more than 2 h for a first reply, some chats more than 60 s
    for the first agent message, and at the demo's start tickets are breaching now."""
    records, _, snapshots = long_run(seed)
    lives = ticket_timelines(events(records))
    first_replies = []
    for timeline in lives.values():
        replies = [at(e) for e in timeline if e["event_type"] == "ticket.agent_replied"]
        if replies:
            first_replies.append(replies[0] - at(timeline[0]))
    late = sum(ms > TWO_HOURS_MS for ms in first_replies) / len(first_replies)
    assert 0.02 <= late <= 0.15, late

    chat_sla = snapshots[("chat", "24h")]["sla"]["chat_first_response"]
    assert 0.70 <= chat_sla["value"] <= 0.95, chat_sla  # ~80/60 service level: some wait > 60 s
    email_sla = snapshots[("email", "24h")]["sla"]["first_response"]
    assert 0.80 <= email_sla["value"] < 0.98, email_sla

    demo_records, demo = demo_start(1)
    start = min(demo)
    seen = ticket_timelines(events(r for r in demo_records if r[0] <= start))
    breaching = [
        t
        for t in seen.values()
        if t[0]["event_type"] == "ticket.created"
        and start - at(t[0]) > TWO_HOURS_MS
        and not any(e["event_type"] == "ticket.agent_replied" for e in t)
    ]
    assert len(breaching) >= 5, len(breaching)  # open, unanswered, past the 2 h target now
    assert demo[start][("all", "15m")]["open_tickets"] >= len(breaching)


def test_agents_reply_and_resolve_only_on_shift_while_chats_run_around_the_clock() -> None:
    """With `next_open`, agent work on tickets happens on shift (a reply due after the
    shift ends is finished on the next one); live sessions are answered at night."""
    next_open = office_hours(8, 18)  # Mon-Fri, UTC
    generator = Generator(9, next_open=next_open)
    records = drive(generator, T0, T0 + 7 * DAY_MS, 0.012, 9)
    on_shift = off_shift_chats = 0
    overnight_waits = []
    for lives in ticket_timelines(events(records)).values():
        created = at(lives[0])
        for event in lives:
            agent_work = event["event_type"] in ("ticket.agent_replied", "ticket.resolved") or (
                event["event_type"] == "ticket.status_changed" and "agent_id" in event
            )
            if agent_work:
                assert next_open(at(event)) == at(event), event
                on_shift += 1
        replies = [at(e) for e in lives if e["event_type"] == "ticket.agent_replied"]
        if replies and next_open(created) != created:
            overnight_waits.append(replies[0] - created)
    for event in events(records):
        if event["event_type"] == "chat.agent_joined" and next_open(at(event)) != at(event):
            off_shift_chats += 1
    assert on_shift > 1000 and off_shift_chats > 50
    assert overnight_waits and min(overnight_waits) > 0
    assert sorted(overnight_waits)[len(overnight_waits) // 2] > 6 * HOUR_MS  # answered next morning

    # the work itself: 1 h started at 17:30 is done at 08:30 the next working day
    friday = parse_rfc3339_ms("2026-11-27T17:30:00Z")
    assert generator._work(friday, HOUR_MS) == parse_rfc3339_ms("2026-11-30T08:30:00Z")
    assert generator._work(friday - HOUR_MS, HOUR_MS) == parse_rfc3339_ms("2026-11-27T17:30:00Z")


def test_arrivals_follow_an_intraday_curve_that_never_reaches_zero() -> None:
    """`next_arrival`: busy late mornings, quiet nights (never empty), the requested
    daily mean, in the generator's time zone."""

    def per_hour(zone: str) -> tuple[Counter[int], int]:
        generator = Generator(11, timezone=zone)
        counts: Counter[int] = Counter()
        t, n = float(T0), 0
        while t < T0 + 14 * DAY_MS:
            t = generator.next_arrival(t, 0.05)
            counts[datetime.fromtimestamp(t / 1000, UTC).hour] += 1
            n += 1
        return counts, n

    counts, n = per_hour("UTC")
    assert abs(n / (14 * 86_400) - 0.05) < 0.003  # the rate is the daily mean
    assert min(counts.values()) > 0.1 * n / 24  # never (near) zero
    assert counts[10] > 4 * counts[3]  # mid-morning peak vs the dead of night
    assert max(counts, key=lambda h: counts[h]) in range(9, 17)
    tokyo, _ = per_hour("Asia/Tokyo")  # UTC+9: the 10:00 peak is at 01:00 UTC
    assert tokyo[1] > 4 * tokyo[18]


def _contacts(seed: int, **options: Any) -> list[Record]:
    generator = Generator(seed, run_id="q", **options)
    arrival = float(T0)
    while arrival < T0 + 6 * HOUR_MS:
        generator.new_contact(int(arrival))
        arrival = generator.next_arrival(arrival, 0.05)
    return list(generator.due(T0 + 60 * DAY_MS))


def test_queues_route_each_contact_to_one_of_its_channel_s_queues_and_change_nothing_else() -> None:
    from stream_app.generator import DEMO_QUEUES

    plain = _contacts(5)
    routed = _contacts(5, queues=DEMO_QUEUES)
    strip = [(t, k, {f: v for f, v in orjson.loads(v).items() if f != "queue"}) for _, t, k, v in routed]
    assert strip == [(t, k, orjson.loads(v)) for _, t, k, v in plain]
    by_contact: dict[bytes, set[str]] = defaultdict(set)
    per_channel: dict[str, Counter[str]] = defaultdict(Counter)
    for _, topic, key, value in routed:
        event = orjson.loads(value)
        allowed = {q for q, _ in DEMO_QUEUES[event["channel"]]}
        assert event["queue"] in allowed, event
        if topic != "cx.surveys":
            by_contact[key].add(event["queue"])
            if event["event_type"] in ("ticket.created", "chat.started"):
                per_channel[event["channel"]][event["queue"]] += 1
    assert all(len(queues) == 1 for queues in by_contact.values())
    phone = per_channel["phone"]
    assert 0.35 < phone["billing"] / sum(phone.values()) < 0.55  # weight 0.45


def test_offers_precede_their_answers_and_the_response_rate_is_the_survey_rate() -> None:
    records = _contacts(6, offers=True)
    offered: dict[str, int] = {}
    answered: dict[str, int] = {}
    for at, topic, _, value in records:
        event = orjson.loads(value)
        assert SCHEMAS.error(INPUTS[topic][0], event) is None, event
        if topic == "cx.surveys":
            target = offered if event["event_type"] == "survey.offered" else answered
            target[event["response_id"]] = at
    assert set(answered) <= set(offered)
    assert all(offered[rid] < at for rid, at in answered.items())
    assert 0.38 < len(answered) / len(offered) < 0.52  # survey_rate 0.45
