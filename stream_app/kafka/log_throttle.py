"""Quiet the Kafka clients' repeated errors while a broker is away.

With the broker down, each aiokafka client logs the same connection error at every
retry (every 100 ms): 200 lines a second in a worker, gigabytes a day; Faust's
producer adds "producer buffer full size N" and "producer flush took N" for every
flush while its buffer is backed up. The first of each message (numbers aside)
still goes through, then at most one a minute with the number held back.
/healthz and `cx_data_age_seconds` say the broker is away.
"""

from __future__ import annotations

import logging
import re
import time

WINDOW_S = 60.0
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: Faust's producer logs its back-pressure at every flush, at info and warning.
FAUST_PRODUCER = "faust.transport.producer"


class RepeatThrottle(logging.Filter):
    """Lets a distinct warning/error message through once per WINDOW_S."""

    def __init__(self, window_s: float = WINDOW_S, min_level: int = logging.WARNING) -> None:
        super().__init__()
        self.window_s = window_s
        self.min_level = min_level
        #: message → (when last let through, how many held back since)
        self.seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key = f"{record.name}:{_NUMBER.sub('N', record.getMessage())}"
        now = time.monotonic()
        last = self.seen.get(key)
        if last is not None and now - last[0] < self.window_s:
            self.seen[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} (repeated {last[1]} times in {self.window_s:.0f} s)"
            record.args = ()
        if len(self.seen) > 1000:  # bounded: distinct messages are few in practice
            self.seen.clear()
        self.seen[key] = (now, 0)
        return True


def throttle_kafka_client_logs() -> RepeatThrottle:
    """Attach one throttle to every aiokafka logger (a logger's filters see only its
    own records, not its children's, so each module's logger gets it)."""
    import aiokafka
    import aiokafka.conn  # noqa: F401

    throttle = RepeatThrottle()
    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] == "aiokafka"]
    for name in ["aiokafka", *names]:
        logging.getLogger(name).addFilter(throttle)
    logging.getLogger(FAUST_PRODUCER).addFilter(RepeatThrottle(min_level=logging.INFO))
    return throttle
