"""Service level, survey response rate and CSAT good/bad ratings (SPEC §3, §4),
worked examples with the arithmetic written out."""

from typing import Any

import pytest

from stream_app import config
from stream_app.core.lifecycle import LifecycleRules
from stream_app.core.replay import Replay
from stream_app.core.service_level import ServiceLevel, parse_service_level
from stream_app.core.timeutil import parse_rfc3339_ms
from stream_app.metrics import Instruments
from tests.factories import encode, event, survey
from tests.unit.conftest import make_intake

NOW = parse_rfc3339_ms("2026-11-22T09:15:30Z")
MIN = 60_000


def _snap(replay: Replay, channel: str = "all", window: str = "15m") -> dict[str, Any]:
    return next(s for s in replay.snapshots(NOW) if s["channel"] == channel and s["window"] == window)


def _chat(
    replay: Replay, cid: str, start: int, *later: tuple[str, int, dict[str, Any]], channel: str = "chat"
) -> None:
    replay.feed("cx.chats", encode(event("chat.started", start, channel, chat_id=cid)), NOW)
    for kind, at, extra in later:
        replay.feed("cx.chats", encode(event(kind, at, channel, chat_id=cid, **extra)), NOW)


def test_service_level_worked_example() -> None:
    """Six chats started 10 min ago:
    a answered after 20 s      → within 60 s
    b answered after 60 s      → within (the threshold itself counts)
    c answered after 90 s      → late
    d abandoned after 30 s     → counted, not within
    e abandoned after 4 s      → short abandon: left out
    f contained by a bot       → neither answered nor abandoned: left out
    service level = 2 within / 4 counted = 0.5"""
    replay = Replay(make_intake(), NOW)
    t0 = NOW - 10 * MIN
    _chat(replay, "a", t0, ("chat.agent_joined", t0 + 20_000, {}))
    _chat(replay, "b", t0, ("chat.agent_joined", t0 + 60_000, {}))
    _chat(replay, "c", t0, ("chat.agent_joined", t0 + 90_000, {}))
    _chat(replay, "d", t0, ("chat.ended", t0 + 30_000, {"resolved": False}))
    _chat(replay, "e", t0, ("chat.ended", t0 + 4_000, {"resolved": False}))
    _chat(replay, "f", t0, ("chat.ended", t0 + 50_000, {"resolved": True}))
    level = _snap(replay)["service_level"]
    assert (level["value"], level["n"]) == (0.5, 4)
    text = Instruments(lambda: [_snap(replay)]).exposition().decode()
    assert 'cx_service_level_ratio{channel="all",window="15m"} 0.5' in text
    assert 'cx_service_level_chats{channel="all",window="15m"} 4.0' in text  # its n beside it


def test_service_level_thresholds_per_channel() -> None:
    """phone 20 s, chat default 60 s: a 30 s answer is late on the phone, in time on chat."""
    threshold, per_channel = parse_service_level("phone=20s,*=60s", ("chat", "phone"))
    rules = LifecycleRules(service_level=ServiceLevel(threshold, per_channel))
    replay = Replay(make_intake(rules=rules), NOW)
    t0 = NOW - 10 * MIN
    _chat(replay, "p", t0, ("chat.agent_joined", t0 + 30_000, {}), channel="phone")
    _chat(replay, "c", t0, ("chat.agent_joined", t0 + 30_000, {}), channel="chat")
    assert _snap(replay, "phone")["service_level"]["value"] == 0.0
    assert _snap(replay, "chat")["service_level"]["value"] == 1.0


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("fax=20s", "unknown channel"), ("chat=0s", "positive"), ("soon", "duration")],
)
def test_a_bad_service_level_stops_start_up_naming_the_variable(raw: str, problem: str) -> None:
    with pytest.raises(config.ConfigError, match=f"STREAM_APP_SERVICE_LEVEL.*{problem}"):
        config.load({"STREAM_APP_SERVICE_LEVEL": raw})


def _offer(replay: Replay, rid: str, at: int, **extra: Any) -> None:
    record = event("survey.offered", at, "email", response_id=rid, survey="csat", **extra)
    replay.feed("cx.surveys", encode(record), NOW)


def test_response_rate_is_over_the_surveys_offered_in_the_window() -> None:
    """Offers r1..r4 5 min ago (r2's offer sent twice); r1 and r3 answered, r3 re-rated;
    r9 answered with no offer seen (it counts in CSAT, not in the response rate).
    Response rate = 2 answered / 4 offered = 0.5; CSAT n = 3."""
    replay = Replay(make_intake(), NOW)
    t0 = NOW - 5 * MIN
    for rid in ("r1", "r2", "r3", "r4"):
        _offer(replay, rid, t0)
    _offer(replay, "r2", t0 + 1000)  # a re-sent invitation: the earliest counts
    replay.feed("cx.surveys", encode(survey("csat", 5, t0 + MIN, "email", response_id="r1")), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 2, t0 + MIN, "email", response_id="r3")), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 4, t0 + 2 * MIN, "email", response_id="r3")), NOW)
    replay.feed("cx.surveys", encode(survey("csat", 1, t0 + MIN, "email", response_id="r9")), NOW)
    snap = _snap(replay)
    assert (snap["response_rate"]["value"], snap["response_rate"]["n"]) == (0.5, 4)
    assert snap["response_rate"]["ci95"] is not None
    assert snap["csat"]["n"] == 3


def test_a_response_arriving_before_its_offer_counts_once_the_offer_arrives() -> None:
    replay = Replay(make_intake(), NOW)
    t0 = NOW - 5 * MIN
    replay.feed("cx.surveys", encode(survey("nps", 9, t0 + MIN, "email", response_id="r1")), NOW)
    assert _snap(replay)["response_rate"]["n"] == 0
    _offer(replay, "r1", t0)
    assert _snap(replay)["response_rate"]["value"] == 1.0


def test_csat_good_bad_ratings() -> None:
    """Scale 2: 2 = good, 1 = bad; 3 good of 4 → 0.75; a 3 is out of range."""
    replay = Replay(make_intake(), NOW)
    for score in (2, 2, 1, 2):
        replay.feed("cx.surveys", encode(survey("csat", score, NOW - MIN, "chat", scale=2)), NOW)
    assert (
        replay.feed("cx.surveys", encode(survey("csat", 3, NOW - MIN, "chat", scale=2)), NOW) == "dead_letter"
    )
    assert replay.rejections["score_out_of_range"] == 1
    csat = _snap(replay)["csat"]
    assert (csat["value"], csat["n"]) == (0.75, 4)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STREAM_APP_SERVICE_LEVEL": "chat=30s,chat=40s"}, "STREAM_APP_SERVICE_LEVEL"),
        ({"STREAM_APP_SHORT_ABANDON": "70s"}, "STREAM_APP_SHORT_ABANDON"),
        ({"STREAM_APP_QUEUES": "billing,Other"}, "STREAM_APP_QUEUES"),
        ({"STREAM_APP_QUEUES": "all"}, "STREAM_APP_QUEUES"),
    ],
)
def test_settings_that_look_like_mistakes_stop_start_up(env: dict[str, str], named: str) -> None:
    with pytest.raises(config.ConfigError, match=named):
        config.load(env)
