"""The receiver's per-source rate limit (a token bucket)."""

from __future__ import annotations

import time

from stream_app.connectors.receiver import TokenBucket


def test_the_bucket_allows_its_rate_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(3)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take()
    assert 0 < wait <= 1 / 3 + 0.01
    time.sleep(0.4)  # a third of a second refills one request
    assert bucket.take() == 0.0
