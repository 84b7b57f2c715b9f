"""Event-time parsing and duration literals, all in integer epoch milliseconds.

Integer milliseconds keep sums exact, so subtracting a retracted contribution
restores a bucket bit-for-bit whatever the arrival order was.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIT_MS = {"ms": 1, "s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}


def parse_rfc3339_ms(text: str) -> int:
    """Epoch ms of an RFC 3339 timestamp that carries an explicit offset.

    Raises ValueError for anything else: a naive time has no meaning across sites.
    """
    if not _RFC3339.match(text):
        raise ValueError(f"not an RFC 3339 timestamp with offset: {text!r}")
    try:  # the common form (upper-case T/Z, up to 6 fraction digits): one C call
        delta = datetime.fromisoformat(text) - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    except (ValueError, OverflowError):
        pass
    cleaned = text.replace("z", "Z").replace("t", "T")
    # fromisoformat takes at most 6 fractional digits; nanoseconds are cut, not rounded.
    head, sep, rest = cleaned.partition(".")
    if sep:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        frac = digits.group(0)
        cleaned = f"{head}.{frac[:6].ljust(6, '0')}{rest[len(frac) :]}"
    try:
        moment = datetime.fromisoformat(cleaned)
        delta = moment - _EPOCH
    except (ValueError, OverflowError) as exc:  # e.g. month 13, or year 0001 at -01:00
        raise ValueError(f"invalid timestamp {text!r}: {exc}") from None
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_ms(ms: int) -> str:
    """RFC 3339 UTC with millisecond precision, the form our outputs use."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@lru_cache(maxsize=1024)
def _date_part(day: int) -> str:
    return format_ms(day * DAY_MS)[:11]


def format_ms_fast(ms: int) -> str:
    """`format_ms` without a datetime per call (the date part is cached per day): for
    generators that stamp hundreds of thousands of events."""
    day, rest = divmod(ms, DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date_part(day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def parse_duration_ms(text: str) -> int:
    """`90s`, `15m`, `1h`, `7d` → milliseconds (ValueError otherwise)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration like 30s, 15m, 1h or 7d: {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
