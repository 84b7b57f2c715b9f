from stream_app.core.aggregate import Aggregate
from stream_app.core.timeutil import HOUR_MS, MINUTE_MS, parse_rfc3339_ms
from stream_app.core.windows import ChannelWindows, Timeline
from tests.unit.conftest import WINDOWS

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")
TL = Timeline(WINDOWS)


def one_ticket() -> Aggregate:
    agg = Aggregate()
    agg.add_fact(("chat", 0, "ticket_created", 0, 0), 1)
    return agg


def test_retention_is_longest_day_plus_grace() -> None:
    assert TL.retention_ms == 25 * HOUR_MS + 10 * MINUTE_MS


def test_lateness_classification() -> None:
    assert TL.lateness(NOW, NOW) is None
    assert TL.lateness(NOW + 5 * MINUTE_MS, NOW) is None
    assert TL.lateness(NOW + 5 * MINUTE_MS + 1, NOW) == "from_future"
    assert TL.lateness(NOW - TL.retention_ms + MINUTE_MS, NOW) is None
    assert TL.lateness(NOW - TL.retention_ms - MINUTE_MS, NOW) == "too_late"


def test_rolling_windows_hold_the_newest_buckets() -> None:
    windows = ChannelWindows(TL, NOW)
    for minutes_ago in (0, 14, 15, 59, 60, 23 * 60):
        windows.apply(TL.bucket_of(NOW - minutes_ago * MINUTE_MS), one_ticket())
    assert windows.window("15m").get("tickets") == 2  # 0 and 14 minutes ago
    assert windows.window("1h").get("tickets") == 4
    assert windows.window("24h").get("tickets") == 6
    assert windows.window("today").get("tickets") == 5  # 23 h ago was yesterday (UTC)


def test_advance_slides_windows_and_drops_old_buckets() -> None:
    windows = ChannelWindows(TL, NOW)
    windows.apply(TL.bucket_of(NOW), one_ticket())
    windows.advance(NOW + 15 * MINUTE_MS)
    assert windows.window("15m").is_empty()
    assert windows.window("1h").get("tickets") == 1
    windows.advance(NOW + 16 * HOUR_MS)  # past midnight UTC
    assert windows.window("today").is_empty()
    assert windows.window("24h").get("tickets") == 1
    dropped = windows.advance(NOW + 26 * HOUR_MS)
    assert dropped == [TL.bucket_of(NOW)]
    assert windows.window("24h").is_empty()
    assert not windows.buckets


def test_today_follows_the_configured_time_zone() -> None:
    tokyo = Timeline(WINDOWS, timezone="Asia/Tokyo")  # 09:15 UTC is 18:15 in Tokyo
    windows = ChannelWindows(tokyo, NOW)
    windows.apply(tokyo.bucket_of(NOW - 10 * HOUR_MS), one_ticket())  # 08:15 Tokyo, same day
    windows.apply(tokyo.bucket_of(NOW - 19 * HOUR_MS), one_ticket())  # 23:15 Tokyo, day before
    assert windows.window("today").get("tickets") == 1


def test_late_delta_outside_retention_is_ignored() -> None:
    windows = ChannelWindows(TL, NOW)
    assert windows.apply(TL.bucket_of(NOW - 30 * HOUR_MS), one_ticket()) is False
    assert windows.window("24h").is_empty()
