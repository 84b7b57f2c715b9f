"""A realistic synthetic contact center: tickets, chats and surveys per channel.

Channels differ in what they carry (email and portal are ticket queues, chat
and messaging are live sessions, phone is both), in volume, and in how
satisfied customers are. A scheduled "CSAT drop" makes one channel's
customers much less satisfied for a while, which the wallboard and the alert
rules must show. `backfill` replays the recent past so every window has data
from the first second of a demo.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from stream_app.core.timeutil import HOUR_MS, MINUTE_MS, format_ms

log = logging.getLogger("stream_app.generator")


@dataclass(frozen=True)
class ChannelProfile:
    weight: float  # share of new contacts
    ticket_share: float  # the rest are live sessions (chats)
    satisfied: float  # probability a CSAT answer is 4-5
    median_reply_s: float  # live: first agent message; tickets: first reply


PROFILES: dict[str, ChannelProfile] = {
    "phone": ChannelProfile(0.22, 0.2, 0.82, 45),
    "email": ChannelProfile(0.16, 1.0, 0.78, 40 * 60),
    "chat": ChannelProfile(0.25, 0.1, 0.87, 40),
    "sms": ChannelProfile(0.06, 0.0, 0.80, 120),
    "social": ChannelProfile(0.06, 0.3, 0.78, 600),
    "video": ChannelProfile(0.03, 0.0, 0.88, 60),
    "portal": ChannelProfile(0.10, 1.0, 0.76, 30 * 60),
    "app": ChannelProfile(0.12, 0.4, 0.84, 90),
    "in_person": ChannelProfile(0.05, 0.5, 0.90, 300),
}


@dataclass(frozen=True)
class Drop:
    """Customers of `channel` answer CSAT with `satisfied` in [start, end) (epoch ms)."""

    channel: str
    start_ms: int
    end_ms: int
    satisfied: float = 0.05


Record = tuple[int, str, bytes, bytes]
PREHISTORY_MS = 6 * HOUR_MS  # (due ms, topic, key, value)


class Generator:
    def __init__(
        self,
        seed: int,
        channels: list[str] | None = None,
        drop: Drop | None = None,
        since_ms: int | None = None,
        profiles: dict[str, ChannelProfile] | None = None,
        survey_rate: float = 0.45,
    ) -> None:
        self.random = random.Random(seed)
        self.profiles = profiles or PROFILES
        #: Share of finished contacts that get a survey answer.
        self.survey_rate = survey_rate
        #: Events before this are not produced. Chats starting earlier are skipped whole
        #: (half a conversation would look abandoned); tickets may be half-seen, as a
        #: helpdesk's are when the service starts.
        self.since_ms = since_ms
        self.channels = [c for c in (channels or list(self.profiles)) if c in self.profiles]
        self.drop = drop
        self.ids = itertools.count(1)
        self.prefix = f"{seed:x}-{int(time.time()):x}"
        self.queue: list[tuple[int, int, str, bytes, bytes]] = []

    def _id(self, kind: str) -> str:
        return f"{kind}-{self.prefix}-{next(self.ids)}"

    def _emit(self, at_ms: int, topic: str, key: str, event: dict[str, Any]) -> None:
        event["occurred_at"] = format_ms(at_ms)
        event.setdefault("event_id", self._id("ev"))
        heapq.heappush(self.queue, (at_ms, next(self.ids), topic, key.encode(), orjson.dumps(event)))

    def _satisfied_share(self, channel: str, at_ms: int) -> float:
        drop = self.drop
        if drop and drop.channel == channel and drop.start_ms <= at_ms < drop.end_ms:
            return drop.satisfied
        return self.profiles[channel].satisfied

    def _delay_ms(self, median_s: float) -> int:
        return max(1000, int(self.random.lognormvariate(0, 0.8) * median_s * 1000))

    def new_contact(self, at_ms: int) -> None:
        """Schedule every event of one new ticket or chat (and maybe its survey)."""
        weights = [self.profiles[c].weight for c in self.channels]
        channel = self.random.choices(self.channels, weights)[0]
        profile = self.profiles[channel]
        if self.random.random() < profile.ticket_share:
            end = self._ticket(channel, profile, at_ms)
        elif self.since_ms is None or at_ms >= self.since_ms:
            end = self._chat(channel, profile, at_ms)
        else:
            return
        if end is not None and self.random.random() < self.survey_rate:
            self._surveys(channel, end + self._delay_ms(60))

    def _ticket(self, channel: str, profile: ChannelProfile, t: int) -> int | None:
        tid = self._id("t")
        base = {"ticket_id": tid, "channel": channel}
        priority = self.random.choices(["low", "normal", "high", "urgent"], [2, 6, 2, 0.5])[0]
        self._emit(t, "cx.tickets", tid, {**base, "event_type": "ticket.created", "priority": priority})
        reply = t + self._delay_ms(profile.median_reply_s)
        self._emit(reply, "cx.tickets", tid, {**base, "event_type": "ticket.agent_replied", "agent_id": "a1"})
        last = reply
        if self.random.random() < 0.25:  # customer follow-up and a second reply
            last += self._delay_ms(profile.median_reply_s)
            self._emit(last, "cx.tickets", tid, {**base, "event_type": "ticket.customer_replied"})
            last += self._delay_ms(profile.median_reply_s)
            self._emit(last, "cx.tickets", tid, {**base, "event_type": "ticket.agent_replied"})
        if self.random.random() < 0.12:
            return None  # still open: backlog
        resolved = last + self._delay_ms(profile.median_reply_s)
        self._emit(resolved, "cx.tickets", tid, {**base, "event_type": "ticket.resolved"})
        if self.random.random() < 0.05:
            self._emit(
                resolved + 20 * MINUTE_MS, "cx.tickets", tid, {**base, "event_type": "ticket.reopened"}
            )
        return resolved

    def _chat(self, channel: str, profile: ChannelProfile, t: int) -> int | None:
        cid = self._id("c")
        base = {"chat_id": cid, "channel": channel}
        self._emit(t, "cx.chats", cid, {**base, "event_type": "chat.started"})
        self._emit(t + 2000, "cx.chats", cid, {**base, "event_type": "chat.message", "sender": "bot"})
        wait = self._delay_ms(profile.median_reply_s)
        if self.random.random() < 0.07:  # customer gives up before an agent joins
            self._emit(t + wait, "cx.chats", cid, {**base, "event_type": "chat.ended", "resolved": False})
            return None
        self._emit(t + wait, "cx.chats", cid, {**base, "event_type": "chat.agent_joined", "agent_id": "a2"})
        answer = t + wait + self._delay_ms(15)
        self._emit(answer, "cx.chats", cid, {**base, "event_type": "chat.message", "sender": "agent"})
        end = answer + self._delay_ms(240)
        if self.random.random() < 0.1:
            self._emit(end - 1000, "cx.chats", cid, {**base, "event_type": "chat.transferred"})
        resolved = self.random.random() < 0.8
        self._emit(end, "cx.chats", cid, {**base, "event_type": "chat.ended", "resolved": resolved})
        return end

    def _surveys(self, channel: str, t: int) -> None:
        satisfied = self._satisfied_share(channel, t)
        happy = self.random.random() < satisfied
        kind = self.random.choices(["csat", "nps", "ces"], [6, 2, 2])[0]
        if kind == "csat":
            score = self.random.choice([4, 5, 5]) if happy else self.random.choice([1, 2, 3, 3])
        elif kind == "nps":
            score = self.random.choice([9, 10, 8]) if happy else self.random.choice([2, 5, 6, 7])
        else:
            score = self.random.choice([5, 6, 7]) if happy else self.random.choice([2, 3, 4])
        rid = self._id("r")
        event = {"response_id": rid, "channel": channel, "event_type": "survey.submitted", "survey": kind}
        self._emit(t, "cx.surveys", rid, {**event, "score": score})

    def due(self, now_ms: int) -> Iterator[Record]:
        while self.queue and self.queue[0][0] <= now_ms:
            at, _, topic, key, value = heapq.heappop(self.queue)
            if self.since_ms is None or at >= self.since_ms:
                yield at, topic, key, value


async def produce(
    bootstrap: str,
    rate: float,
    duration_s: float | None,
    seed: int,
    backfill_ms: int = HOUR_MS,
    drop: Drop | None = None,
    channels: list[str] | None = None,
) -> int:
    """Run the generator in real time; returns how many records it produced.

    `rate` is new contacts per second (each makes ~4 events).
    """
    start = time.time() * 1000
    generator = Generator(seed, channels, drop, since_ms=int(start - backfill_ms))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    sent = 0
    try:
        # Simulate the last few hours so long-running tickets (email, portal) resolve
        # during the backfill, but produce only the backfill's events, as fast as the
        # broker takes them: every window has data from the first seconds of a run.
        t = start - max(backfill_ms, PREHISTORY_MS) if backfill_ms else start
        while t < start:
            generator.new_contact(int(t))
            t += generator.random.expovariate(rate) * 1000
        for _, topic, key, value in generator.due(int(start)):
            await producer.send(topic, value, key=key)
            sent += 1
        deadline = None if duration_s is None else start + duration_s * 1000
        next_contact = start
        while deadline is None or time.time() * 1000 < deadline:
            now = time.time() * 1000
            while next_contact <= now:
                generator.new_contact(int(next_contact))
                next_contact += generator.random.expovariate(rate) * 1000
            for _, topic, key, value in generator.due(int(now)):
                await producer.send(topic, value, key=key)
                sent += 1
            await asyncio.sleep(0.1)
        await producer.flush()
    finally:
        await producer.stop()
    log.info("generator produced %d records", sent)
    return sent
