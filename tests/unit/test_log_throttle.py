"""Repeated client errors are let through once a minute, with a count."""

from __future__ import annotations

import logging

from stream_app.kafka.log_throttle import RepeatThrottle


def record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.conn", level, __file__, 1, message, (), None)


def test_a_repeated_error_passes_once_per_window_with_its_count() -> None:
    throttle = RepeatThrottle(window_s=60)
    refused = "Unable connect to node with id 1: [Errno 111] Connection refused"
    assert throttle.filter(record(refused))
    assert not any(throttle.filter(record(refused)) for _ in range(500))
    assert throttle.filter(record("another error"))  # a different message is news
    assert throttle.filter(record("fine", logging.INFO))  # below warning: untouched
    throttle.window_s = 0.0  # the window has passed
    again = record(refused)
    assert throttle.filter(again)
    assert again.getMessage().endswith("(repeated 500 times in 0 s)")


def test_messages_that_differ_only_in_numbers_are_one_message() -> None:
    throttle = RepeatThrottle(window_s=60, min_level=logging.INFO)
    assert throttle.filter(record("producer buffer full size 103", logging.WARNING))
    assert not throttle.filter(record("producer buffer full size 117", logging.WARNING))
    assert throttle.filter(record("producer flush took 0.25", logging.INFO))
    assert not throttle.filter(record("producer flush took 1.5", logging.INFO))
