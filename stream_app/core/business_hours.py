"""Business-hours calendars and the SLA clock (SPEC §5).

A `Calendar` is a weekly pattern of opening periods in local wall-clock time of
an IANA zone, minus holidays (whole or partial local days). An instant is in
business hours when its local wall-clock time falls in one of the periods of its
local date (a period whose end is before its start runs overnight into the next
date) and in no holiday of that date. That definition is what the brute-force
reference in the tests checks minute by minute, across DST changes: in a
spring-forward gap the skipped local times simply never occur, and in a
fall-back hour the repeated local times count twice, as a clock on the wall
would.

DST arithmetic comes from the standard library's `zoneinfo` (the IANA database).
We looked for a library for the rest: `businesstimedelta` (1.0.1, unmaintained,
pytz-based) has no partial holidays or overnight periods; pandas'
`CustomBusinessHour` has one opening per day for every weekday and would bring
pandas into the worker; generic interval libraries (`portion`) would replace only
the few sorted-list merges below. So the expansion of a weekly pattern into UTC
intervals is ours, cached per local day, and property-tested.

Times are epoch milliseconds (UTC instants); durations are milliseconds.
`None` as a calendar means 24/7.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream_app.core.timeutil import DAY_MS, HOUR_MS, MINUTE_MS

Interval = tuple[int, int]  # [start, end) in ms
#: How far a deadline is searched for (a calendar that never opens has none).
HORIZON_MS = 400 * DAY_MS
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
_STEP_MS = DAY_MS  # offsets are checked at least this often (DST changes are months apart)


@dataclass(frozen=True, eq=False)
class Calendar:
    """Weekly opening periods (local minutes since midnight, per weekday, Monday = 0)
    and holidays (local day number since 1970-01-01 → closed [from, to) minutes).

    A period (start, end) with end <= start runs overnight: [start, 24:00) of its
    day and [00:00, end) of the next. A holiday closes local time on its date only.
    Compared and hashed by identity (one object per configured calendar): it keys
    the arithmetic's caches, and hashing its fields on every lookup was measurable.
    """

    name: str
    timezone: str
    weekly: tuple[tuple[tuple[int, int], ...], ...]  # 7 tuples of (start_min, end_min)
    holidays: tuple[tuple[int, int, int], ...] = ()  # (day number, from_min, to_min)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Schedules:
    """Calendars by name and which applies where: queue, else channel, else default.

    No calendar at all (the default) means 24/7.
    """

    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    default: str | None = None
    channels: Mapping[str, str] = field(default_factory=dict)
    queues: Mapping[str, str] = field(default_factory=dict)

    def calendar_for(self, channel: str, queue: str | None) -> Calendar | None:
        name = (self.queues.get(queue) if queue else None) or self.channels.get(channel) or self.default
        return None if name is None else self.calendars[name]

    def __hash__(self) -> int:  # frozen with dict fields: hash by identity (one per worker)
        return id(self)


# --- parsing (STREAM_APP_SCHEDULES) ---------------------------------------------------

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def _minutes(text: str, where: str) -> int:
    found = _TIME.match(text.strip())
    if not found or int(found[2]) >= 60 or int(found[1]) > 24 or (int(found[1]) == 24 and int(found[2])):
        raise ValueError(f"{where}: {text!r} is not a time HH:MM (00:00-24:00)")
    return int(found[1]) * 60 + int(found[2])


def _period(text: Any, where: str) -> tuple[int, int]:
    if not isinstance(text, str) or text.count("-") != 1:
        raise ValueError(f"{where}: {text!r} is not a period HH:MM-HH:MM")
    start, end = (_minutes(part, f"{where} ({text!r})") for part in text.split("-"))
    if start == end:
        raise ValueError(f"{where}: period {text!r} is empty")
    if start == 24 * 60:
        raise ValueError(f"{where}: period {text!r} starts at 24:00")
    return start, end


def _days(spec: str, where: str) -> list[int]:
    """`mon`, `mon-fri`, `sat,sun`, `daily` → weekday numbers."""
    spec = spec.strip().lower()
    if spec in ("daily", "every day", "all"):
        return list(range(7))
    days: list[int] = []
    for part in spec.split(","):
        ends = [p.strip()[:3] for p in part.split("-")]
        if any(e not in WEEKDAYS for e in ends) or len(ends) > 2:
            raise ValueError(f"{where}: {spec!r} is not a weekday or range (mon..sun, mon-fri, daily)")
        first, last = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        days.extend((first + i) % 7 for i in range((last - first) % 7 + 1))
    return days


def _day_number(value: Any, where: str) -> int:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not a date YYYY-MM-DD") from None
    if not isinstance(value, date):
        raise ValueError(f"{where}: {value!r} is not a date YYYY-MM-DD")
    return (value - date(1970, 1, 1)).days


def parse_calendar(name: str, raw: Any) -> Calendar:
    where = f"calendars.{name}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping with timezone, hours, holidays")
    unknown = set(raw) - {"timezone", "hours", "holidays"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    zone = str(raw.get("timezone") or "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{where}.timezone: {zone!r} is not an IANA time zone") from None
    hours = raw.get("hours")
    if not isinstance(hours, dict) or not hours:
        raise ValueError(f'{where}.hours: expected weekday → periods, e.g. mon-fri: ["09:00-18:00"]')
    weekly: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for days, periods in hours.items():
        key = f"{where}.hours.{days}"
        if isinstance(periods, str):
            periods = [periods]
        if periods is None or periods == "closed":
            periods = []
        if not isinstance(periods, list):
            raise ValueError(f"{key}: expected a list of periods HH:MM-HH:MM")
        for day in _days(str(days), key):
            weekly[day].extend(_period(p, key) for p in periods)
    if not any(weekly):
        raise ValueError(f"{where}.hours: no opening hours at all (every SLA on it would be met)")
    holidays: list[tuple[int, int, int]] = []
    for i, item in enumerate(raw.get("holidays") or []):
        key = f"{where}.holidays[{i}]"
        if isinstance(item, dict):
            unknown = set(item) - {"date", "from", "to"}
            if unknown or "date" not in item:
                raise ValueError(f"{key}: expected date (and optionally from, to)")
            day = _day_number(item["date"], key)
            low = _minutes(str(item.get("from", "00:00")), key)
            high = _minutes(str(item.get("to", "24:00")), key)
            if high <= low:
                raise ValueError(f"{key}: from must be before to")
            holidays.append((day, low, high))
        else:
            holidays.append((_day_number(item, key), 0, 24 * 60))
    return Calendar(name, zone, tuple(tuple(sorted(p)) for p in weekly), tuple(sorted(holidays)))


def parse_schedules(raw: Any, channels: Iterable[str] = ()) -> Schedules:
    """The YAML document of STREAM_APP_SCHEDULES → `Schedules`; ValueError names the key.

    Shape::

        calendars:
          office:
            timezone: Europe/Berlin
            hours: {mon-fri: ["09:00-12:30", "13:30-18:00"], sat: "10:00-14:00"}
            holidays: [2026-12-25, {date: 2026-12-24, from: "12:00"}]
        assign:
          default: office          # optional: without it, unassigned work is 24/7
          channels: {chat: always}
          queues: {billing: office}
    """
    if not isinstance(raw, dict):
        raise ValueError("expected a mapping with calendars and assign")
    unknown = set(raw) - {"calendars", "assign"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))} (expected calendars, assign)")
    calendars_raw = raw.get("calendars")
    if not isinstance(calendars_raw, dict) or not calendars_raw:
        raise ValueError("calendars: expected at least one named calendar")
    calendars = {str(name): parse_calendar(str(name), spec) for name, spec in calendars_raw.items()}
    assign = raw.get("assign") or {}
    if not isinstance(assign, dict) or set(assign) - {"default", "channels", "queues"}:
        raise ValueError("assign: expected default, channels and/or queues")

    def known(name: Any, where: str) -> str:
        if str(name) not in calendars:
            raise ValueError(f"{where}: no calendar named {name!r} (have {', '.join(sorted(calendars))})")
        return str(name)

    default = known(assign["default"], "assign.default") if assign.get("default") else None
    allowed = set(channels)
    by_channel: dict[str, str] = {}
    for channel, name in (assign.get("channels") or {}).items():
        if allowed and str(channel) not in allowed:
            raise ValueError(f"assign.channels.{channel}: not one of STREAM_APP_CHANNELS")
        by_channel[str(channel)] = known(name, f"assign.channels.{channel}")
    by_queue = {str(q): known(name, f"assign.queues.{q}") for q, name in (assign.get("queues") or {}).items()}
    return Schedules(calendars, default, by_channel, by_queue)


# --- arithmetic -------------------------------------------------------------------------


def _offset_ms(zone: ZoneInfo, at_ms: int) -> int:
    offset = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1000)


def _segments(zone: ZoneInfo, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """[start, end) cut where the zone's UTC offset changes: (from, to, offset ms)."""
    seg_start = at = start
    offset = _offset_ms(zone, start)
    while at < end:
        probe = min(end, at + _STEP_MS)
        # The same offset at both ends of a day means none in between: the IANA data
        # has no zone that changes twice within a day.
        if _offset_ms(zone, probe - 1) == offset:
            at = probe
            continue
        low, high = at, probe - 1  # offset(low) is ours, offset(high) is not
        while high - low > 1:
            mid = (low + high) // 2
            if _offset_ms(zone, mid) == offset:
                low = mid
            else:
                high = mid
        yield seg_start, high, offset
        seg_start = at = high
        offset = _offset_ms(zone, high)
    yield seg_start, end, offset


@lru_cache(maxsize=4096)
def _local_day(calendar: Calendar, day: int) -> tuple[Interval, ...]:
    """Open intervals of one local day's own periods, in local naive ms (may run past
    midnight for overnight periods), before the holidays of any date are removed."""
    base = day * DAY_MS
    weekday = (day + _EPOCH_WEEKDAY) % 7
    spans = []
    for start, end in calendar.weekly[weekday]:
        stop = end if end > start else end + 24 * 60
        spans.append((base + start * MINUTE_MS, base + stop * MINUTE_MS))
    return tuple(spans)


@lru_cache(maxsize=1024)
def _holiday_index(calendar: Calendar) -> dict[int, list[Interval]]:
    index: dict[int, list[Interval]] = {}
    for day, low, high in calendar.holidays:
        index.setdefault(day, []).append((day * DAY_MS + low * MINUTE_MS, day * DAY_MS + high * MINUTE_MS))
    return index


def _subtract(spans: list[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """Sorted disjoint `spans` minus `holes`."""
    for h_start, h_end in sorted(holes):
        kept: list[Interval] = []
        for s, e in spans:
            if e <= h_start or s >= h_end:
                kept.append((s, e))
                continue
            if s < h_start:
                kept.append((s, h_start))
            if e > h_end:
                kept.append((h_end, e))
        spans = kept
    return spans


def _merge(spans: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _local_open(calendar: Calendar, low: int, high: int) -> list[Interval]:
    """Business time in local naive ms [low, high): periods minus holidays."""
    first, last = low // DAY_MS - 1, (high - 1) // DAY_MS  # the day before: overnight periods
    spans = _merge(s for day in range(first, last + 1) for s in _local_day(calendar, day))
    holidays = _holiday_index(calendar)
    holes = [h for day in range(first, last + 2) for h in holidays.get(day, ())]
    if holes:
        spans = _subtract(spans, holes)
    return [(max(s, low), min(e, high)) for s, e in spans if e > low and s < high]


#: Every UTC offset in the IANA data is within ±14 h.
_MAX_OFFSET_MS = 15 * HOUR_MS


@lru_cache(maxsize=16_384)
def _utc_day(calendar: Calendar, day: int) -> tuple[Interval, ...]:
    """Business time of the instants whose local date is `day`, as UTC intervals."""
    low, high = day * DAY_MS, (day + 1) * DAY_MS
    local = _local_open(calendar, low, high)
    if not local:
        return ()
    spans = []
    # local = utc + offset, so the instants of this local date lie within ±15 h of it
    for seg_start, seg_end, offset in _segments(calendar.zone, low - _MAX_OFFSET_MS, high + _MAX_OFFSET_MS):
        for s, e in local:
            s, e = max(s - offset, seg_start), min(e - offset, seg_end)
            if s < e:
                spans.append((s, e))
    return tuple(_merge(spans))


def open_intervals(calendar: Calendar | None, start: int, end: int) -> list[Interval]:
    """Business time within [start, end) as sorted, disjoint UTC intervals (ms)."""
    if end <= start:
        return []
    if calendar is None:
        return [(start, end)]
    pieces = [
        (max(s, start), min(e, end))
        for day in range((start - _MAX_OFFSET_MS) // DAY_MS, (end + _MAX_OFFSET_MS) // DAY_MS + 1)
        for s, e in _utc_day(calendar, day)
        if e > start and s < end
    ]
    return _merge(pieces)


def running(
    calendar: Calendar | None, start: int, end: int, pauses: Iterable[tuple[int, int | None]] = ()
) -> list[Interval]:
    """When an SLA clock runs in [start, end): business time minus the pauses
    ((from, to) ms, `to` None = still paused)."""
    spans = open_intervals(calendar, start, end)
    holes = [(s, end if e is None else e) for s, e in pauses]
    return _subtract(spans, holes) if holes else spans


def elapsed_ms(
    calendar: Calendar | None, start: int, end: int, pauses: Iterable[tuple[int, int | None]] = ()
) -> int:
    """Time the SLA clock ran between `start` and `end` (ms; 0 when end <= start)."""
    held = tuple(pauses)
    if calendar is None and not held:
        return max(0, end - start)
    return _elapsed(calendar, start, end, held)


@lru_cache(maxsize=65_536)
def _elapsed(
    calendar: Calendar | None, start: int, end: int, pauses: tuple[tuple[int, int | None], ...]
) -> int:
    # cached: a ticket's facts are computed before and after each of its events
    return sum(e - s for s, e in running(calendar, start, end, pauses))


def deadline_ms(
    calendar: Calendar | None, start: int, target_ms: int, pauses: Iterable[tuple[int, int | None]] = ()
) -> int | None:
    """The instant the clock started at `start` reaches `target_ms` (ms), or None when
    it never does (paused for good first, or no business hours within a long horizon)."""
    held = tuple(pauses)
    if calendar is None and not held:
        return start + target_ms
    return _deadline(calendar, start, target_ms, held)


@lru_cache(maxsize=65_536)
def _deadline(
    calendar: Calendar | None, start: int, target_ms: int, pauses: tuple[tuple[int, int | None], ...]
) -> int | None:
    left = target_ms
    # Look a little ahead first (most deadlines are within a day or two), then further.
    chunk = max(2 * target_ms, DAY_MS) if calendar is None else max(4 * target_ms, DAY_MS // 2)
    at = start
    while at < start + HORIZON_MS:
        for s, e in running(calendar, at, at + chunk, pauses):
            if e - s >= left:
                return s + left
            left -= e - s
        if any(e is None and s < at + chunk for s, e in pauses):
            return None  # paused from here on for good: the clock never gets there
        at += chunk
        chunk = min(2 * chunk, 32 * DAY_MS)
    return None


def next_open(calendar: Calendar | None, at_ms: int) -> int | None:
    """The first instant at or after `at_ms` in business hours (None: none within the horizon)."""
    if calendar is None:
        return at_ms
    chunk = 8 * DAY_MS
    for start in range(at_ms, at_ms + HORIZON_MS, chunk):
        spans = open_intervals(calendar, start, start + chunk)
        if spans:
            return spans[0][0]
    return None
