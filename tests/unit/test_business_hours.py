"""Business-hours calendars: the SLA clock against a brute-force minute-by-minute reference."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.core.business_hours import (
    Calendar,
    deadline_ms,
    elapsed_ms,
    next_open,
    open_intervals,
    parse_calendar,
    parse_schedules,
)
from stream_app.core.timeutil import DAY_MS, HOUR_MS, MINUTE_MS

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Pacific/Chatham",  # a +12:45 offset
    "Asia/Tokyo",
    "Asia/Kolkata",
)


def ms(text: str, zone: str = "UTC") -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


def office(zone: str = "Europe/Berlin", holidays: list[object] | None = None) -> Calendar:
    return parse_calendar(
        "office", {"timezone": zone, "hours": {"mon-fri": "09:00-18:00"}, "holidays": holidays}
    )


# --- the reference: is the minute starting at `at` in business hours? -----------------


def reference_open(calendar: Calendar, at: int) -> bool:
    local = datetime.fromtimestamp(at / 1000, UTC).astimezone(ZoneInfo(calendar.timezone))
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    day = (local.date() - date(1970, 1, 1)).days
    inside = any(s <= minute < (e if e > s else 24 * 60) for s, e in calendar.weekly[weekday]) or any(
        e <= s and minute < e for s, e in calendar.weekly[(weekday - 1) % 7]
    )
    holiday = any(d == day and low <= minute < high for d, low, high in calendar.holidays)
    return inside and not holiday


def reference_elapsed(calendar: Calendar, start: int, end: int, pauses: list[tuple[int, int]] = ()) -> int:  # type: ignore[assignment]
    return MINUTE_MS * sum(
        1
        for at in range(start, end, MINUTE_MS)
        if reference_open(calendar, at) and not any(s <= at < e for s, e in pauses)
    )


def reference_deadline(calendar: Calendar, start: int, target: int) -> int | None:
    left = target
    for at in range(start, start + 40 * DAY_MS, MINUTE_MS):
        if reference_open(calendar, at):
            left -= MINUTE_MS
            if left == 0:
                return at + MINUTE_MS
    return None


# --- strategies --------------------------------------------------------------------


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    zone = draw(st.sampled_from(ZONES))
    hours: dict[str, list[str]] = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        periods = []
        cuts = sorted(draw(st.sets(st.integers(0, 95), max_size=4)))  # quarter hours
        for i in range(0, len(cuts) - 1, 2):
            periods.append(
                f"{cuts[i] // 4:02d}:{cuts[i] % 4 * 15:02d}-{cuts[i + 1] // 4:02d}:{cuts[i + 1] % 4 * 15:02d}"
            )
        if draw(st.booleans()) and draw(st.booleans()):  # an overnight period now and then
            start = draw(st.integers(80, 95))
            end = draw(st.integers(1, 20))
            if not cuts or cuts[-1] < start:
                periods.append(f"{start // 4:02d}:{start % 4 * 15:02d}-{end // 4:02d}:{end % 4 * 15:02d}")
        hours[day] = periods
    if not any(hours.values()):  # a calendar must open sometime (an empty one is refused)
        hours["mon"] = ["09:00-10:00"]
    first_day = date(2026, 1, 1)
    holidays: list[object] = []
    for offset in draw(st.lists(st.integers(0, 365), max_size=6)):
        day = date.fromordinal(first_day.toordinal() + offset).isoformat()
        if draw(st.booleans()):
            holidays.append(day)
        else:
            low = draw(st.integers(0, 22))
            holidays.append(
                {"date": day, "from": f"{low:02d}:00", "to": f"{draw(st.integers(low + 1, 24)):02d}:00"}
            )
    calendar = parse_calendar("random", {"timezone": zone, "hours": hours, "holidays": holidays})
    # non-overlapping periods in a day, as the reference assumes a plain "in any period"
    return calendar


#: Spans start near the year's DST changes and holidays as often as anywhere else.
SPAN_STARTS = st.one_of(
    st.integers(ms("2026-01-01T00:00"), ms("2026-12-20T00:00")),
    st.sampled_from(
        [
            ms(t)
            for t in (
                "2026-03-08T00:00",
                "2026-03-28T12:00",
                "2026-04-04T10:00",
                "2026-10-24T12:00",
                "2026-10-31T20:00",
                "2026-09-26T12:00",
                "2026-12-24T00:00",
            )
        ]
    ),
)


@settings(max_examples=60, deadline=None)
@given(calendars(), SPAN_STARTS, st.integers(0, 6 * 24 * 60))
def test_business_time_equals_the_minute_by_minute_reference(
    calendar: Calendar, start: int, minutes: int
) -> None:
    start -= start % MINUTE_MS
    end = start + minutes * MINUTE_MS
    assert elapsed_ms(calendar, start, end) == reference_elapsed(calendar, start, end)
    spans = open_intervals(calendar, start, end)
    assert all(a < b for a, b in spans) and all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1))


@settings(max_examples=40, deadline=None)
@given(calendars(), SPAN_STARTS, st.integers(1, 3 * 60))
def test_deadline_equals_the_reference(calendar: Calendar, start: int, target_minutes: int) -> None:
    start -= start % MINUTE_MS
    target = target_minutes * MINUTE_MS
    expected = reference_deadline(calendar, start, target)
    found = deadline_ms(calendar, start, target)
    if expected is None:  # never within the reference's horizon: ours may find it later or not at all
        assert found is None or found > start + 40 * DAY_MS
    else:
        assert found == expected
        assert elapsed_ms(calendar, start, found) == target


@settings(max_examples=40, deadline=None)
@given(
    calendars(),
    SPAN_STARTS,
    st.integers(0, 4 * 24 * 60),
    st.lists(st.tuples(st.integers(0, 4 * 24 * 60), st.integers(1, 24 * 60)), max_size=4),
)
def test_pauses_are_taken_out_of_business_time(
    calendar: Calendar, start: int, minutes: int, raw_pauses: list[tuple[int, int]]
) -> None:
    start -= start % MINUTE_MS
    end = start + minutes * MINUTE_MS
    pauses = [(start + a * MINUTE_MS, start + (a + b) * MINUTE_MS) for a, b in raw_pauses]
    assert elapsed_ms(calendar, start, end, pauses) == reference_elapsed(calendar, start, end, pauses)


def test_friday_evening_to_monday_morning() -> None:
    # Created Fri 2026-11-27 17:30, answered Mon 2026-11-30 09:45 (Berlin), open Mon-Fri 09:00-18:00.
    # Business: Fri 17:30-18:00 (30 min) + Mon 09:00-09:45 (45 min) = 75 min.
    # Calendar: Fri 17:30 -> Mon 17:30 is 72 h; minus 7 h 45 min (Mon 09:45 -> 17:30) = 64 h 15 min.
    created, answered = ms("2026-11-27T17:30", "Europe/Berlin"), ms("2026-11-30T09:45", "Europe/Berlin")
    assert elapsed_ms(office(), created, answered) == 75 * MINUTE_MS
    assert answered - created == 64 * HOUR_MS + 15 * MINUTE_MS
    # Its 2 h first-response target is reached Mon 10:30: 30 min Friday + 90 min Monday.
    assert deadline_ms(office(), created, 2 * HOUR_MS) == ms("2026-11-30T10:30", "Europe/Berlin")


def test_a_holiday_weekend() -> None:
    # Christmas 2026: Thu 24 (closed from 12:00), Fri 25 holiday, then the weekend.
    calendar = office(holidays=[{"date": "2026-12-24", "from": "12:00"}, "2026-12-25"])
    created, answered = ms("2026-12-24T11:00", "Europe/Berlin"), ms("2026-12-28T10:00", "Europe/Berlin")
    # Thu 11:00-12:00 (1 h) + Mon 09:00-10:00 (1 h) = 2 h.
    assert elapsed_ms(calendar, created, answered) == 2 * HOUR_MS


def test_dst_spring_forward_and_fall_back() -> None:
    night = parse_calendar("night", {"timezone": "America/New_York", "hours": {"daily": "01:00-03:00"}})
    # 2026-03-08: 02:00-02:59 does not exist: 01:00-03:00 local is one real hour.
    day = ms("2026-03-08T00:00", "America/New_York")
    assert elapsed_ms(night, day, day + 6 * HOUR_MS) == HOUR_MS
    # 2026-11-01: 01:00-01:59 happens twice: three real hours between 01:00 and 03:00.
    day = ms("2026-11-01T00:00", "America/New_York")
    assert elapsed_ms(night, day, day + 6 * HOUR_MS) == 3 * HOUR_MS


def test_overnight_period() -> None:
    late = parse_calendar("late", {"timezone": "UTC", "hours": {"fri": "22:00-06:00"}})
    friday = ms("2026-11-27T00:00")
    assert open_intervals(late, friday, friday + 3 * DAY_MS) == [
        (friday + 22 * HOUR_MS, friday + 30 * HOUR_MS)
    ]


def test_deadline_with_an_open_ended_pause_is_none() -> None:
    start = ms("2026-11-30T09:00")
    assert deadline_ms(None, start, 2 * HOUR_MS, [(start + HOUR_MS, None)]) is None
    assert (
        deadline_ms(None, start, 2 * HOUR_MS, [(start + HOUR_MS, start + 4 * HOUR_MS)]) == start + 5 * HOUR_MS
    )


def test_schedules_assignment_and_errors() -> None:
    doc = {
        "calendars": {
            "office": {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-12:00", "13:00-18:00"]}}
        },
        "assign": {"default": "office", "channels": {"chat": "office"}, "queues": {"vip": "office"}},
    }
    schedules = parse_schedules(doc, ["chat", "email"])
    assert schedules.calendar_for("email", None) is schedules.calendars["office"]
    assert parse_schedules({"calendars": doc["calendars"]}).calendar_for("email", "vip") is None
    bad = [
        ({"calendars": {"x": {"timezone": "Mars/Base", "hours": {"mon": "09:00-10:00"}}}}, "Mars/Base"),
        ({"calendars": {"x": {"hours": {"funday": "09:00-10:00"}}}}, "funday"),
        ({"calendars": {"x": {"hours": {"mon": "9-10"}}}}, "9-10"),
        ({"calendars": {"x": {"hours": {"mon": "25:00-26:00"}}}}, "25:00"),
        ({**doc, "assign": {"default": "home"}}, "home"),
        ({**doc, "assign": {"channels": {"fax": "office"}}}, "fax"),
        ({"calendars": {"x": {"hours": {"mon": "09:00-10:00"}, "holidays": ["someday"]}}}, "someday"),
        ({"calendars": {"x": {"hours": {"daily": []}}}}, "no opening hours"),
    ]
    for document, named in bad:
        with pytest.raises(ValueError, match=named):
            parse_schedules(document, ["chat", "email"])


def test_next_open() -> None:
    friday_evening = ms("2026-11-27T18:30", "Europe/Berlin")
    assert next_open(office(), friday_evening) == ms("2026-11-30T09:00", "Europe/Berlin")
    inside = ms("2026-11-30T10:00", "Europe/Berlin")
    assert next_open(office(), inside) == inside
    assert next_open(None, inside) == inside
