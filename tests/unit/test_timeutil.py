"""Time helpers."""

from hypothesis import given
from hypothesis import strategies as st

from stream_app.core.timeutil import format_ms, format_ms_fast, parse_rfc3339_ms


@given(st.integers(0, 4_102_444_800_000))  # 1970 to 2100
def test_the_fast_stamp_is_format_ms(at_ms: int) -> None:
    assert format_ms_fast(at_ms) == format_ms(at_ms)
    assert parse_rfc3339_ms(format_ms_fast(at_ms)) == at_ms
