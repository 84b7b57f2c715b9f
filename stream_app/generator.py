"""A realistic synthetic contact center: tickets, chats and surveys per channel.

Channels differ in what they carry (email and portal are ticket queues, chat
and messaging are live sessions, phone is both), in volume, and in how
satisfied customers are. A scheduled "CSAT drop" makes one channel's
customers much less satisfied for a while, which the wallboard and the alert
rules must show.

What makes it look like a real floor (sources for every rate below are in
`docs/demo-traffic.md`, and next to the numbers):

- Tickets always end. After the first reply a ticket is solved, or set
  `pending` (waiting on the customer, who replies, or is solved by the
  bump-bump-solve automation when they stay silent), or gets a follow-up from
  the customer, or goes `on_hold` (waiting on a third party). Most take hours,
  a few take days: the open backlog follows Little's law (arrivals × mean time
  open) instead of growing without end.
- First-contact resolution differs by channel as published benchmarks say
  (email about half, live chat about three quarters).
- Agents work shifts: with `next_open`, ticket replies, agents' status changes
  and resolutions happen only on shift (work due off shift is finished on the
  next shift); live sessions are answered around the clock.
- Arrivals follow an intraday curve (`next_arrival`), never zero; customers and
  third parties answer mostly by day too.
- Some first replies miss the 2 h target, some chats wait more than 60 s, and
  some customers leave before an agent answers.

`since_ms` turns the simulation into what a service started at that moment
receives: events from then on, plus every ticket and chat still in play then
*with its whole history* (a helpdesk's backlog is days old; without its
`ticket.created` the service could not count it, and FCR would only see the
quick tickets). `history` simulates that past cheaply, for `produce`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as clock
from functools import partial
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaProducer

from stream_app.core import business_hours
from stream_app.core.business_hours import Calendar
from stream_app.core.timeutil import DAY_MS, HOUR_MS, MINUTE_MS, format_ms_fast

log = logging.getLogger("stream_app.generator")


@dataclass(frozen=True)
class ChannelProfile:
    """How one channel's contacts behave. The first four fields are the original
    positional ones; the others have defaults (a generic channel)."""

    weight: float  # relative share of new contacts
    ticket_share: float  # the rest are live sessions (chats)
    satisfied: float  # probability a CSAT answer is 4-5
    #: live sessions: median wait for an agent to join; tickets: median first reply
    #: (working time) unless `ticket_reply_s` is given.
    median_reply_s: float
    ticket_reply_s: float | None = None  # tickets' median first reply (working time)
    # After the first reply a ticket is: solved by it; set pending (waiting on the
    # customer); put on hold (waiting on a third party); or, the rest, followed up by
    # the customer unprompted. Only "solved" and a pending one whose customer stays
    # silent (solved by the automation: one agent reply, no follow-up) are first-contact.
    solved_first: float = 0.45
    pending: float = 0.30
    on_hold: float = 0.08
    abandon: float = 0.06  # live sessions the customer leaves before an agent joins
    transfer: float = 0.24  # answered live sessions transferred (not first-contact)
    handle_s: float = 600  # median length of a live session once the agent is in


# Where the numbers come from (links: docs/demo-traffic.md). "assumed": no published figure.
# weight: SQM's contact-channel research puts the phone at ~40% and email at ~10% of all
#   contact volume (self-service included, which is not ours); the other shares assumed.
# ticket first reply (working time): the it_services preset's target is 2 h; customers
#   expect an email answer within 1 h (Toister 2018), while the average company takes
#   12 h (SuperOffice, via Toister) and helpdesks' median is 7 h (Jitbit). The demo is a
#   floor staffed for its 2 h target: median 25-40 min, ~6% later than 2 h (assumed).
# FCR: email 51% (SQM, email channel), phone 70% (SQM, call centres), live chat 76% and
#   social 60% (industry composite, useconverge.app); the others assumed. The core counts
#   a live session as first-contact unless it was transferred, so `transfer` is set to
#   give the benchmark; for tickets `solved_first` plus silent pending ones minus reopens.
# live wait: phone ~80% answered within 20 s, the common "80/20" service level (Turnella);
#   chat: mean wait 35-46 s and over half of teams under 30 s (Comm100 Live Chat
#   Benchmark 2017-2020); messaging, video and walk-in queues assumed.
# abandon: 5-8% of calls is the industry range, 5.9% on average (Uniphore, Fullview).
# handle: chats last ~14 min (Comm100 2017); calls 4-7 min (assumed); messaging assumed.
PROFILES: dict[str, ChannelProfile] = {
    # phone: 9 s median wait → ~80% within 20 s; 15% of calls leave a follow-up ticket
    # (assumed); 30% transferred → FCR ≈ 70% (SQM).
    "phone": ChannelProfile(0.28, 0.15, 0.82, 9, 35 * 60, 0.40, 0.30, 0.12, 0.06, 0.30, 6 * 60),
    # email: first reply median 30 min; 42% solved by it + ~7% silent pending − reopens
    # → FCR ≈ 50% (SQM: 51%).
    "email": ChannelProfile(0.12, 1.0, 0.78, 30 * 60, 30 * 60, 0.42, 0.30, 0.08),
    # chat: 22 s median wait (Comm100: mean 35-46 s); 20% transferred → FCR of the live
    # sessions 80%, ~77% with the chat channel's tickets (composite: 76%).
    "chat": ChannelProfile(0.23, 0.1, 0.87, 22, 30 * 60, 0.45, 0.30, 0.08, 0.06, 0.20, 12 * 60),
    # messaging channels answer in minutes (assumed); social FCR ≈ 60% (composite).
    "sms": ChannelProfile(0.06, 0.0, 0.80, 120, None, 0.45, 0.30, 0.08, 0.03, 0.24, 15 * 60),
    "social": ChannelProfile(0.06, 0.3, 0.78, 300, 35 * 60, 0.42, 0.30, 0.10, 0.03, 0.40, 15 * 60),
    "video": ChannelProfile(0.03, 0.0, 0.88, 45, None, 0.45, 0.30, 0.08, 0.06, 0.25, 10 * 60),
    # portal: web forms, answered a little faster than email (assumed), FCR like email.
    "portal": ChannelProfile(0.08, 1.0, 0.76, 25 * 60, 25 * 60, 0.46, 0.28, 0.07),
    "app": ChannelProfile(0.12, 0.4, 0.84, 60, 30 * 60, 0.45, 0.30, 0.08, 0.04, 0.24, 12 * 60),
    "in_person": ChannelProfile(0.05, 0.5, 0.90, 300, 40 * 60, 0.40, 0.30, 0.15, 0.04, 0.20, 8 * 60),
}


#: The demo's routing: queues per channel with their own volumes (shares of the
#: channel's contacts, assumed). `general` is not in DEMO_QUEUES_REPORTED: it shows
#: up as `other`, as an unlisted queue does in production.
DEMO_QUEUES: dict[str, list[tuple[str, float]]] = {
    "phone": [("billing", 0.45), ("tech_support", 0.35), ("vip", 0.20)],
    "email": [("billing", 0.40), ("tech_support", 0.50), ("general", 0.10)],
    "chat": [("sales", 0.45), ("tech_support", 0.45), ("vip", 0.10)],
    "sms": [("sales", 0.6), ("general", 0.4)],
    "social": [("general", 1.0)],
    "video": [("vip", 1.0)],
    "portal": [("tech_support", 0.7), ("billing", 0.3)],
    "app": [("sales", 0.3), ("tech_support", 0.5), ("billing", 0.2)],
    "in_person": [("general", 1.0)],
}
DEMO_QUEUES_REPORTED = ("billing", "tech_support", "sales", "vip")


@dataclass(frozen=True)
class Drop:
    """Customers of `channel` answer CSAT with `satisfied` in [start, end) (epoch ms)."""

    channel: str
    start_ms: int
    end_ms: int
    satisfied: float = 0.05


Record = tuple[int, str, bytes, bytes]  # (due ms, topic, key, value)
#: How far before `since_ms` callers that drive `new_contact` themselves start (as
#: tests/unit/test_demo_alerts.py does): live sessions in progress at `since_ms` and
#: their surveys are there, and the tickets of the last hour. The days-old rest of the
#: backlog (and with it unbiased FCR and "breaching now") needs `history`, which
#: reaches back HISTORY_MS, cheaply: `produce` uses it.
PREHISTORY_MS = 1 * HOUR_MS
#: How far back `history` simulates tickets: the silent-pending automation solves a
#: ticket 72 h after it went pending, a third party is chased within 3 days, and a solved
#: ticket can be reopened for 4 days (Zendesk's standard closing automation): older
#: tickets are practically all closed.
HISTORY_MS = 4 * DAY_MS

# --- tickets -------------------------------------------------------------------------
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_WEIGHTS = (2, 6, 2, 0.5)  # assumed
_PRIORITY_CUMULATIVE = list(itertools.accumulate(PRIORITY_WEIGHTS))
#: First replies come sooner for higher priorities (assumed).
PRIORITY_SPEED = {"low": 1.6, "normal": 1.0, "high": 0.6, "urgent": 0.3}
#: Spread of agents' reply times (lognormal σ). With email's 30 min median, ~5% of
#: normal-priority tickets wait more than 2 h for the first reply, ~14% of low-priority
#: ones, ~6% overall (assumed).
FIRST_REPLY_SIGMA = 0.85
#: Later agent replies (after a customer answer, a third party, a reopen), relative to
#: the channel's first-reply median (assumed).
LATER_REPLY_FACTOR = 0.75
#: Work between the solving reply and marking the ticket solved, at most (assumed).
SOLVE_WORK_MS = 3 * MINUTE_MS
#: A pending ticket's customer replies with this probability (assumed; Evan Hamilton's
#: look at pending tickets found that customers still silent after days rarely answer);
#: the others are solved by the "bump-bump-solve" automation PENDING_SOLVE_MS after the
#: ticket went pending (72 h: the usual final close, eesel.ai; Zendesk's recipe: 7 days).
PENDING_REPLY = 0.75
PENDING_SOLVE_MS = 72 * HOUR_MS
#: The customer's answer to a pending ticket: median 4 h of customer time, σ 1.2,
#: before the automation (assumed).
CUSTOMER_REPLY_S = 4 * 3600
#: An unprompted follow-up from the customer: median 2 h, σ 1.2 (assumed).
FOLLOW_UP_S = 2 * 3600
CUSTOMER_SIGMA = 1.2
#: A third party answers an on-hold ticket: median 20 h, σ 0.7, within 3 days (assumed:
#: a supervisor chases what waits longer).
THIRD_PARTY_S = 20 * 3600
THIRD_PARTY_MAX_MS = 3 * DAY_MS
#: After a later agent reply the ticket is solved with this probability, else it is
#: pending again and the (engaged) customer answers; at most MAX_ROUNDS replies (assumed).
SOLVED_AFTER_REPLY = 0.75
MAX_ROUNDS = 4
#: Solved tickets reopened by the customer: 3.1% (Endsight's 2022 survey of 260
#: companies, via Klipfolio MetricHQ); within Zendesk's 4 days from solved to closed:
#: median 12 h of customer time, σ 1 (assumed).
REOPEN = 0.031
REOPEN_S = 12 * 3600
REOPEN_MAX_MS = 4 * DAY_MS - HOUR_MS
#: `history` (without shifts) simulates every ticket created in the last QUICK_HISTORY_MS
#: before `since_ms`; up to FULL_HISTORY_MS, all but those solved by the first reply and
#: never reopened (a first reply later than 6 h is under 1%); older ones only where their
#: path is a long one (silent pending, on hold, reopened): the other paths are over by
#: then (their tail past 36 h is well under 1% of the backlog).
QUICK_HISTORY_MS = 6 * HOUR_MS
FULL_HISTORY_MS = 36 * HOUR_MS

# --- live sessions -------------------------------------------------------------------
#: Spread of the wait for an agent and of the customers' patience (lognormal σ, assumed).
WAIT_SIGMA = 0.9
#: First agent message after joining: median 5 s (assumed).
GREET_S = 5
#: Answered sessions that end resolved (assumed); FCR counts resolved ones only.
LIVE_RESOLVED = 0.9
#: Longest wait simulated (an agent joins by then).
MAX_WAIT_MS = 45 * MINUTE_MS
#: Sessions started up to this long before `since_ms` are simulated: those still in
#: progress then are produced whole, the others may still have a survey to come (a
#: session plus its survey delay is practically always shorter).
LIVE_LOOKBACK_MS = 2 * HOUR_MS

# --- arrivals ------------------------------------------------------------------------
#: Relative arrival rate per local hour of day (normalised to a mean of 1). Daytime
#: shape from Turnella's intraday profile: morning peak 09:30-11:30, a dip at lunch,
#: post-lunch recovery 13:00-14:30, a second peak 15:30-17:30, then a decline; peak
#: intervals 2.5-4x the quietest interval of the working day. Night: assumed, kept at
#: ~1/5 of the daily mean so a demo looks alive at any hour (a 24/7 digital floor).
INTRADAY: tuple[float, ...] = (
    0.30, 0.22, 0.18, 0.16, 0.16, 0.20,  # 00-05
    0.35, 0.55, 0.95, 1.55, 1.80, 1.75,  # 06-11
    1.35, 1.45, 1.55, 1.65, 1.60, 1.35,  # 12-17
    1.05, 0.85, 0.75, 0.65, 0.50, 0.38,  # 18-23
)  # fmt: skip

#: `next_open` probes the shift calendar at this step: off-shift gaps shorter than it
#: inside a piece of work may go unnoticed.
SHIFT_PROBE_MS = 15 * MINUTE_MS

NextOpen = Callable[[int], int]
#: A ticket's planned events: (time, event type, status or None), in time order.
_Plan = list[tuple[int, str, str | None]]
_AGENT_EVENTS = frozenset({"ticket.agent_replied", "ticket.resolved"})


def office_hours(
    open_hour: int = 8,
    close_hour: int = 18,
    weekdays: Sequence[int] = (0, 1, 2, 3, 4),
    timezone: str | tzinfo = "UTC",
) -> NextOpen:
    """A `next_open` for one shift a day: [open_hour, close_hour) local time on
    `weekdays` (0 = Monday). It returns the earliest epoch ms >= t on shift."""
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    days = frozenset(weekdays)
    if not days <= set(range(7)) or not days or not 0 <= open_hour < close_hour <= 24:
        raise ValueError("office_hours needs weekdays in 0-6 and 0 <= open_hour < close_hour <= 24")

    def next_open(t_ms: int) -> int:
        local = datetime.fromtimestamp(t_ms / 1000, zone)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            if day.weekday() not in days:
                continue
            start = datetime.combine(day, clock(open_hour), zone)
            end = datetime.combine(day, clock(0), zone) + timedelta(hours=close_hour)
            if t_ms < int(end.timestamp() * 1000):
                return max(t_ms, int(start.timestamp() * 1000))
        raise AssertionError("unreachable: a working day comes within a week")

    return next_open


class Generator:
    def __init__(
        self,
        seed: int,
        channels: list[str] | None = None,
        drop: Drop | None = None,
        since_ms: int | None = None,
        profiles: dict[str, ChannelProfile] | None = None,
        survey_rate: float = 0.45,
        next_open: NextOpen | None = None,
        timezone: str | tzinfo = "UTC",
        intraday: Sequence[float] | None = INTRADAY,
        run_id: str | None = None,
        shifts: Calendar | None = None,
        queues: Mapping[str, Sequence[tuple[str, float]]] | None = None,
        offers: bool = False,
    ) -> None:
        self.random = random.Random(seed)
        #: Queues and survey offers draw from their own stream, so turning them on
        #: changes nothing else of the traffic (same seed, same contacts).
        self.extra_random = random.Random(seed * 7919 + 14)
        #: channel → [(queue, weight)]: the queue each new contact of the channel is
        #: routed to (SPEC §4 dimensions); channels not listed name no queue.
        self.queues = {c: list(q) for c, q in (queues or {}).items() if q}
        #: Emit `survey.offered` for every finished contact (the response rate is then
        #: about `survey_rate`); without it only the answers are sent.
        self.offers = offers
        self._contact_queue: str | None = None
        #: The agent of the contact being planned: its survey names them (agent figures).
        self._contact_agent: str | None = None
        self.profiles = profiles or PROFILES
        #: Share of finished contacts that get a survey answer.
        self.survey_rate = survey_rate
        #: Events before this are not produced, except the whole history of tickets
        #: and chats still in play then (started earlier, with an event at or after it).
        self.since_ms = since_ms
        self.channels = [c for c in (channels or list(self.profiles)) if c in self.profiles]
        self.drop = drop
        #: Ticket agents' shifts as a business-hours calendar (the demo's desk): work is
        #: timed with the SLA clock's own arithmetic, far faster than probing `next_open`.
        self.shifts = shifts
        if shifts is not None and next_open is None:
            next_open = partial(_calendar_next_open, shifts)
        #: The earliest epoch ms >= t at which ticket agents are on shift (None: always).
        self.next_open = next_open
        #: The zone of the intraday curve's hours.
        self.timezone: tzinfo = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        curve = list(intraday) if intraday else [1.0] * 24
        if len(curve) != 24 or min(curve) <= 0:
            raise ValueError("the intraday curve needs 24 hourly values above zero")
        mean = sum(curve) / len(curve)
        #: Relative arrival rate per local hour of day, mean 1.
        self.curve = [v / mean for v in curve]
        #: The curve integrated from local midnight to the start of each hour (ms).
        self._cumulative = [0.0, *itertools.accumulate(v * HOUR_MS for v in self.curve)]
        self._offsets: dict[int, int] = {}
        self.ids = itertools.count(1)
        # Event ids must differ between runs (a broker keeps earlier runs' events, and a
        # repeated id is a duplicate); pass run_id for byte-identical output.
        self.prefix = f"{seed:x}-{run_id if run_id is not None else format(int(time.time()), 'x')}"
        self.queue: list[tuple[int, int, str, bytes, bytes]] = []
        weights = [self.profiles[c].weight for c in self.channels]
        self._weights = list(itertools.accumulate(weights))
        ticket_weights = [self.profiles[c].weight * self.profiles[c].ticket_share for c in self.channels]
        #: Share of new contacts that are tickets (what `history` simulates before since_ms).
        self.ticket_fraction = sum(ticket_weights) / max(sum(weights), 1e-12)
        self._ticket_weights = list(itertools.accumulate(ticket_weights))
        # A customer abandons when their patience (lognormal, σ = WAIT_SIGMA) runs out
        # before the wait does; the patience median that makes that happen with the
        # profile's probability: P(ln p < ln w) = Φ((ln m_w − ln m_p) / (σ√2)).
        self._patience = {
            c: p.median_reply_s * math.exp(-math.sqrt(2) * WAIT_SIGMA * NormalDist().inv_cdf(p.abandon))
            if 0 < p.abandon < 1
            else math.inf
            for c, p in self.profiles.items()
        }

    # --- helpers -------------------------------------------------------------------

    def _id(self, kind: str) -> str:
        return f"{kind}-{self.prefix}-{next(self.ids)}"

    def _emit(self, at_ms: int, topic: str, key: str, event: dict[str, Any]) -> None:
        if self._contact_queue is not None:
            event.setdefault("queue", self._contact_queue)
        event["occurred_at"] = format_ms_fast(at_ms)
        event.setdefault("event_id", self._id("ev"))
        # orjson keeps a ~4 KB buffer behind every result: copy it, the queue may hold millions
        value = bytes(memoryview(orjson.dumps(event)))
        heapq.heappush(self.queue, (at_ms, next(self.ids), topic, key.encode(), value))

    def _satisfied_share(self, channel: str, at_ms: int) -> float:
        drop = self.drop
        if drop and drop.channel == channel and drop.start_ms <= at_ms < drop.end_ms:
            return drop.satisfied
        return self.profiles[channel].satisfied

    def _lognormal_ms(self, median_s: float, sigma: float, floor_ms: int = 1000) -> int:
        return max(floor_ms, int(math.exp(self.random.gauss(0.0, sigma)) * median_s * 1000))

    def _delay_ms(self, median_s: float) -> int:
        return self._lognormal_ms(median_s, 0.8)

    def _work(self, t: int, work_ms: int) -> int:
        """When `work_ms` of agent work started at `t` is done: work happens only on
        shift; what is left when a shift ends is finished on the next one."""
        next_open = self.next_open
        if next_open is None:
            return t + work_ms
        if self.shifts is not None and work_ms > 0:
            done = business_hours.deadline_ms(self.shifts, t, work_ms)
            if done is not None:
                return done
        t = next_open(t)
        while True:
            end = t + work_ms
            on = t  # the last moment known to be on shift
            probe = t
            off = None
            while probe < end:
                probe = min(probe + SHIFT_PROBE_MS, end)
                if next_open(probe) != probe:
                    off = probe
                    break
                on = probe
            if off is None:
                return end
            while off - on > 1:  # the shift's end, to the millisecond
                mid = (on + off) // 2
                if next_open(mid) == mid:
                    on = mid
                else:
                    off = mid
            work_ms -= off - t
            t = next_open(off)

    def load(self, at_ms: float) -> float:
        """The intraday curve's relative arrival rate at `at_ms` (mean 1 over a day)."""
        return self._segment(at_ms)[0]

    def _offset_ms(self, at_ms: float) -> int:
        """The zone's UTC offset at `at_ms`, looked up once per UTC hour."""
        hour = int(at_ms // HOUR_MS)
        found = self._offsets.get(hour)
        if found is None:
            offset = self.timezone.utcoffset(datetime.fromtimestamp(hour * 3600, UTC))
            found = self._offsets[hour] = int(offset.total_seconds() * 1000) if offset else 0
        return found

    def _segment(self, at_ms: float) -> tuple[float, float]:
        """(relative rate, end of its local hour) at `at_ms`."""
        local = at_ms + self._offset_ms(at_ms)
        hour = int(local // HOUR_MS) % 24
        return self.curve[hour], at_ms + HOUR_MS - local % HOUR_MS

    def _advance(self, t: float, need_ms: float) -> float:
        """The time at which the intraday curve, integrated from `t`, reaches `need_ms`
        (the curve is a step per local hour with mean 1, so a whole day integrates to a
        day). The zone's offset at `t` is used throughout (a DST change shifts by an hour)."""
        offset = self._offset_ms(t)
        local = t + offset
        day_start = local - local % DAY_MS
        position = local - day_start
        hour = min(int(position // HOUR_MS), 23)
        done = self._cumulative[hour] + self.curve[hour] * (position - hour * HOUR_MS)
        days, rest = divmod(done + need_ms, DAY_MS)
        hour = min(bisect_right(self._cumulative, rest) - 1, 23)
        position = hour * HOUR_MS + (rest - self._cumulative[hour]) / self.curve[hour]
        return day_start + days * DAY_MS + position - offset

    def _customer_time(self, t: int, delay_ms: int) -> int:
        """When `delay_ms` of a customer's (or a third party's) time has passed since `t`:
        people answer mostly by day, so their clock runs at the intraday curve's pace
        (an hour at night, at 1/5 of the mean activity, counts a fifth of an hour)."""
        return max(t, int(self._advance(t, delay_ms)))

    def next_arrival(self, after_ms: float, rate: float) -> float:
        """The next arrival after `after_ms` of contacts arriving at `rate` per second on
        average over a day, following the intraday curve (a Poisson process whose rate
        is constant within each local hour)."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        return max(after_ms, self._advance(after_ms, self.random.expovariate(rate) * 1000))

    # --- contacts ------------------------------------------------------------------

    def _route(self, channel: str) -> None:
        """Pick the queue of the contact being planned (its events, survey and offer name it)."""
        self._contact_agent = None
        choices = self.queues.get(channel)
        if not choices:
            self._contact_queue = None
            return
        names, weights = zip(*choices, strict=True)
        self._contact_queue = self.extra_random.choices(names, weights)[0]

    def _after_contact(self, channel: str, end: int | None, answered: bool) -> None:
        """The survey of a finished contact: answered (the caller drew it), or only offered."""
        if end is None:
            return
        if answered:
            self._surveys(channel, end + self._delay_ms(60))
        elif self.offers:
            kind = self.extra_random.choices(["csat", "nps", "ces"], [6, 2, 2])[0]
            self._offer(channel, end + self.extra_random.randint(10_000, 120_000), self._id("r"), kind)

    def _offer(self, channel: str, at_ms: int, rid: str, kind: str) -> None:
        if self.since_ms is not None and at_ms < self.since_ms:
            return
        event = {"response_id": rid, "channel": channel, "event_type": "survey.offered", "survey": kind}
        self._emit(at_ms, "cx.surveys", rid, event)

    def new_contact(self, at_ms: int) -> None:
        """Schedule every event of one new ticket or chat (and maybe its survey)."""
        rnd = self.random
        channel = self.channels[bisect(self._weights, rnd.random() * self._weights[-1])]
        profile = self.profiles[channel]
        self._route(channel)
        if rnd.random() < profile.ticket_share:
            end = self._ticket(channel, profile, at_ms)
        elif self.since_ms is None or at_ms >= self.since_ms - LIVE_LOOKBACK_MS:
            end = self._chat(channel, profile, at_ms)
        else:
            return  # over long before since_ms (and its survey too)
        self._after_contact(channel, end, end is not None and rnd.random() < self.survey_rate)

    def history(self, until_ms: int, rate: float, horizon_ms: int = HISTORY_MS) -> float:
        """Simulate contacts arriving at `rate` per second (daily mean, intraday curve)
        up to `until_ms`, starting `horizon_ms` before `since_ms`: what a floor that was
        already running holds when the service starts at `since_ms`.

        Before `since_ms` only tickets are simulated (nothing else of then is produced),
        the older ones only where they may still be open (see QUICK_HISTORY_MS). Returns
        the time of the first arrival at or after `until_ms`, to go on from.
        """
        since = self.since_ms if self.since_ms is not None else until_ms
        start = since - horizon_ms
        stretches: list[tuple[int, str | None]] = [(since, None)]  # (until, which tickets)
        if self.next_open is None:  # with shifts a quick ticket may wait out a weekend
            stretches = [
                (since - FULL_HISTORY_MS, "slow"),
                (since - QUICK_HISTORY_MS, "unquick"),
                (since, None),
            ]
        t = start
        slow = self._slow_share()
        for until, only in stretches:
            if until <= t:
                continue
            share = self.ticket_fraction * (slow if only == "slow" else 1.0)
            if share > 0:  # arrivals are memoryless: each stretch starts afresh
                arrival = self.next_arrival(t, rate * share)
                while arrival < until:
                    self._history_ticket(int(arrival), only)
                    arrival = self.next_arrival(arrival, rate * share)
            t = until
        arrival = self.next_arrival(max(since - LIVE_LOOKBACK_MS, start), rate)
        while arrival < until_ms:
            if arrival >= since:
                self.new_contact(int(arrival))
            else:  # live sessions (the tickets of then are above)
                self._history_chat(int(arrival))
            arrival = self.next_arrival(arrival, rate)
        return arrival

    def _history_ticket(self, at_ms: int, only: str | None) -> None:
        channel = self.channels[bisect(self._ticket_weights, self.random.random() * self._ticket_weights[-1])]
        profile = self.profiles[channel]
        self._route(channel)
        end = self._ticket(channel, profile, at_ms, only)
        self._after_contact(channel, end, end is not None and self.random.random() < self.survey_rate)

    def _history_chat(self, at_ms: int) -> None:
        """A contact arriving shortly before `since_ms` that is a live session, if any."""
        rnd = self.random
        channel = self.channels[bisect(self._weights, rnd.random() * self._weights[-1])]
        profile = self.profiles[channel]
        if rnd.random() < profile.ticket_share:
            return  # a ticket: `history` has simulated those
        self._route(channel)
        end = self._chat(channel, profile, at_ms)
        self._after_contact(channel, end, end is not None and rnd.random() < self.survey_rate)

    def _slow_share(self) -> float:
        """Share of tickets on a long path (silent pending, on hold) or reopened."""
        total = weights = 0.0
        for c in self.channels:
            p = self.profiles[c]
            w = p.weight * p.ticket_share
            slow = p.pending * (1 - PENDING_REPLY) + p.on_hold
            total += w * (slow + (1 - slow) * REOPEN)
            weights += w
        return total / weights if weights else 0.0

    def _ticket(self, channel: str, profile: ChannelProfile, t0: int, only: str | None = None) -> int | None:
        """Plan one ticket; emit it unless it is over before `since_ms`. Returns its
        first resolution time (for the survey), or None when it is not emitted.

        For `history`: only="slow" draws the ticket conditioned on a long path (silent
        pending, on hold) or a reopen; only="unquick" drops, unplanned, a ticket solved
        by its first reply and never reopened (over within hours).
        """
        rnd = self.random
        silent = profile.pending * (1 - PENDING_REPLY)
        slow = silent + profile.on_hold
        reopen: bool | None = None
        if only == "slow":  # conditioned on: slow path, or a quick path that is reopened
            total = slow + (1 - slow) * REOPEN
            if rnd.random() < slow / total:
                path = "silent" if rnd.random() * slow < silent else "on_hold"
            else:
                path, reopen = self._quick_path(profile, rnd.random() * (1 - slow)), True
        else:
            x = rnd.random()
            if x < silent:
                path = "silent"
            elif x < slow:
                path = "on_hold"
            else:
                path = self._quick_path(profile, x - slow)
        if reopen is None:
            reopen = rnd.random() < REOPEN
        if only == "unquick" and path == "solved" and not reopen:
            return None

        plan: _Plan = []
        priority = PRIORITIES[bisect(_PRIORITY_CUMULATIVE, rnd.random() * _PRIORITY_CUMULATIVE[-1])]
        first_s = (profile.ticket_reply_s or profile.median_reply_s) * PRIORITY_SPEED[priority]
        later_s = (profile.ticket_reply_s or profile.median_reply_s) * LATER_REPLY_FACTOR
        plan.append((t0, "ticket.created", None))
        t = self._work(t0, self._lognormal_ms(first_s, FIRST_REPLY_SIGMA))
        plan.append((t, "ticket.agent_replied", None))

        if path == "solved":
            resolved = self._work(t, int(rnd.random() * SOLVE_WORK_MS))
        elif path == "silent":
            plan.append((t, "ticket.status_changed", "pending"))
            # bump-bump-solve: the automation solves it; the solve lands on the next shift
            resolved = self._work(t + PENDING_SOLVE_MS, 0)
        else:
            if path == "answered":
                plan.append((t, "ticket.status_changed", "pending"))
                t = self._customer_reply(t)
                plan.append((t, "ticket.customer_replied", None))
                plan.append((t, "ticket.status_changed", "open"))
            elif path == "follow_up":
                t = self._customer_time(t, self._lognormal_ms(FOLLOW_UP_S, CUSTOMER_SIGMA))
                plan.append((t, "ticket.customer_replied", None))
            else:  # on hold: a third party answers, an agent takes it off hold on shift
                plan.append((t, "ticket.status_changed", "on_hold"))
                answered = self._customer_time(t, self._lognormal_ms(THIRD_PARTY_S, 0.7))
                t = self._work(min(answered, t + THIRD_PARTY_MAX_MS), 0)
                plan.append((t, "ticket.status_changed", "off_hold"))
            resolved = self._conversation(plan, t, later_s)
        plan.append((resolved, "ticket.resolved", None))
        first_resolution = resolved

        if reopen:
            late = self._customer_time(resolved, self._lognormal_ms(REOPEN_S, 1.0))
            t = min(late, resolved + REOPEN_MAX_MS)
            plan.append((t, "ticket.reopened", None))
            t = self._work(t, self._lognormal_ms(later_s, FIRST_REPLY_SIGMA))
            plan.append((t, "ticket.agent_replied", None))
            plan.append((self._work(t, int(rnd.random() * SOLVE_WORK_MS)), "ticket.resolved", None))

        since = self.since_ms
        if since is not None and plan[-1][0] < since:  # the plan is in time order
            return None  # over before the service started: never seen
        tid = self._id("t")
        agent = f"a{1 + int(rnd.random() * 40)}"
        self._contact_agent = agent
        for at, kind, status in plan:
            event: dict[str, Any] = {"ticket_id": tid, "channel": channel, "event_type": kind}
            if kind == "ticket.created":
                event["priority"] = priority
            elif status is None:
                if kind in _AGENT_EVENTS:
                    event["agent_id"] = agent
            elif status == "off_hold":  # an agent sets it open again
                event["status"] = "open"
                event["agent_id"] = agent
            else:
                event["status"] = status
                if status != "open":  # open again because the customer wrote: no agent
                    event["agent_id"] = agent
            self._emit(at, "cx.tickets", tid, event)
        return first_resolution

    def _customer_reply(self, pending_at: int) -> int:
        """When the customer answers a pending ticket (before the automation solves it)."""
        at = self._customer_time(pending_at, self._lognormal_ms(CUSTOMER_REPLY_S, CUSTOMER_SIGMA))
        return min(at, pending_at + PENDING_SOLVE_MS - HOUR_MS)

    def _quick_path(self, profile: ChannelProfile, x: float) -> str:
        """The path for x uniform in [0, 1 − slow share): solved, answered pending, follow-up."""
        if x < profile.solved_first:
            return "solved"
        if x < profile.solved_first + profile.pending * PENDING_REPLY:
            return "answered"
        return "follow_up"

    def _conversation(self, plan: _Plan, t: int, later_s: float) -> int:
        """Agent replies (on shift) until one solves the ticket; between them the ticket
        waits on the customer. Returns the resolution time."""
        rnd = self.random
        for round_ in range(MAX_ROUNDS):
            t = self._work(t, self._lognormal_ms(later_s, FIRST_REPLY_SIGMA))
            plan.append((t, "ticket.agent_replied", None))
            if round_ == MAX_ROUNDS - 1 or rnd.random() < SOLVED_AFTER_REPLY:
                break
            plan.append((t, "ticket.status_changed", "pending"))
            t = self._customer_reply(t)
            plan.append((t, "ticket.customer_replied", None))
            plan.append((t, "ticket.status_changed", "open"))
        return self._work(t, int(rnd.random() * SOLVE_WORK_MS))

    def _chat(self, channel: str, profile: ChannelProfile, t: int) -> int | None:
        """Plan one live session and emit it unless it is over before `since_ms`.
        Returns its end (for the survey), or None when the customer abandoned."""
        rnd = self.random
        wait = min(self._lognormal_ms(profile.median_reply_s, WAIT_SIGMA), MAX_WAIT_MS)
        patience = self._patience[channel]
        gives_up = self._lognormal_ms(patience, WAIT_SIGMA) if patience < math.inf else MAX_WAIT_MS + 1
        since = self.since_ms
        if gives_up < wait:  # the customer leaves before an agent joins
            if since is None or t + gives_up >= since:
                cid = self._id("c")
                self._chat_event(t, cid, channel, "chat.started")
                self._chat_event(t + 2000, cid, channel, "chat.message", sender="bot")
                self._chat_event(t + gives_up, cid, channel, "chat.ended", resolved=False)
            return None
        answer = t + wait + self._lognormal_ms(GREET_S, 0.5)
        end = answer + self._lognormal_ms(profile.handle_s, 0.6)
        transferred = rnd.random() < profile.transfer
        moved = answer + int((end - answer) * rnd.uniform(0.2, 0.8)) if transferred else None
        resolved = rnd.random() < LIVE_RESOLVED
        agent = f"a{41 + int(rnd.random() * 80)}"
        self._contact_agent = agent
        if since is None or end >= since:  # in progress at since: its whole history
            cid = self._id("c")
            self._chat_event(t, cid, channel, "chat.started")
            self._chat_event(t + 2000, cid, channel, "chat.message", sender="bot")
            self._chat_event(t + wait, cid, channel, "chat.agent_joined", agent_id=agent)
            self._chat_event(answer, cid, channel, "chat.message", sender="agent")
            if moved is not None:
                self._chat_event(moved, cid, channel, "chat.transferred")
            self._chat_event(end, cid, channel, "chat.ended", resolved=resolved)
        return end

    def _chat_event(self, at_ms: int, cid: str, channel: str, kind: str, **extra: Any) -> None:
        self._emit(at_ms, "cx.chats", cid, {"chat_id": cid, "channel": channel, "event_type": kind, **extra})

    def _surveys(self, channel: str, t: int) -> None:
        satisfied = self._satisfied_share(channel, t)
        rnd = self.random
        happy = rnd.random() < satisfied
        kind = rnd.choices(["csat", "nps", "ces"], [6, 2, 2])[0]
        if kind == "csat":
            score = rnd.choice([4, 5, 5]) if happy else rnd.choice([1, 2, 3, 3])
        elif kind == "nps":
            score = rnd.choice([9, 10, 8]) if happy else rnd.choice([2, 5, 6, 7])
        else:
            score = rnd.choice([5, 6, 7]) if happy else rnd.choice([2, 3, 4])
        if self.since_ms is not None and t < self.since_ms:
            return
        rid = self._id("r")
        if self.offers:  # the invitation went out when the contact ended, before the answer
            self._offer(channel, t - self.extra_random.randint(5_000, 50_000), rid, kind)
        event = {"response_id": rid, "channel": channel, "event_type": "survey.submitted", "survey": kind}
        if self._contact_agent is not None:
            event["agent_id"] = self._contact_agent
        self._emit(t, "cx.surveys", rid, {**event, "score": score})

    def due(self, now_ms: int) -> Iterator[Record]:
        """Scheduled events up to `now_ms`, in time order (and removed from the queue)."""
        while self.queue and self.queue[0][0] <= now_ms:
            at, _, topic, key, value = heapq.heappop(self.queue)
            yield at, topic, key, value


def _calendar_next_open(calendar: Calendar, at_ms: int) -> int:
    found = business_hours.next_open(calendar, at_ms)
    return at_ms if found is None else found


def bisect(cumulative: list[float], x: float) -> int:
    """Index of the first cumulative weight above x (random.choices without the setup)."""
    return min(bisect_right(cumulative, x), len(cumulative) - 1)


def local_timezone() -> tzinfo:
    """This machine's zone (a fixed offset), for the demo's intraday curve."""
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


async def produce(
    bootstrap: str,
    rate: float,
    duration_s: float | None,
    seed: int,
    backfill_ms: int = HOUR_MS,
    drop: Drop | None = None,
    channels: list[str] | None = None,
    next_open: NextOpen | None = None,
    timezone: str | tzinfo | None = None,
    intraday: Sequence[float] | None = INTRADAY,
    shifts: Calendar | None = None,
    queues: Mapping[str, Sequence[tuple[str, float]]] | None = None,
    offers: bool = False,
) -> int:
    """Run the generator in real time; returns how many records it produced.

    `rate` is new contacts per second averaged over a day (each makes ~5 events); the
    intraday curve (in `timezone`, default this machine's) makes it higher by day and
    lower at night. `next_open` gives ticket agents' shifts (default: around the clock).
    """
    start = time.time() * 1000
    generator = Generator(
        seed,
        channels,
        drop,
        since_ms=int(start - backfill_ms),
        next_open=next_open,
        timezone=timezone if timezone is not None else local_timezone(),
        intraday=intraday,
        shifts=shifts,
        queues=queues,
        offers=offers,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    sent = 0
    try:
        # Simulate the backfill and, before it, the days of tickets still open when it
        # begins (the helpdesk's backlog, with their whole history), then produce all of
        # that as fast as the broker takes it: every window has data, and backlog, FCR
        # and first-response figures are right from the first seconds of a run.
        if backfill_ms:
            next_contact = await asyncio.to_thread(generator.history, int(start), rate)
        else:
            next_contact = generator.next_arrival(start, rate)
        for _, topic, key, value in generator.due(int(start)):
            await producer.send(topic, value, key=key)
            sent += 1
        deadline = None if duration_s is None else start + duration_s * 1000
        while deadline is None or time.time() * 1000 < deadline:
            now = time.time() * 1000
            while next_contact <= now:
                generator.new_contact(int(next_contact))
                next_contact = generator.next_arrival(next_contact, rate)
            for _, topic, key, value in generator.due(int(now)):
                await producer.send(topic, value, key=key)
                sent += 1
            await asyncio.sleep(0.1)
        await producer.flush()
    finally:
        await producer.stop()
    log.info("generator produced %d records", sent)
    return sent
