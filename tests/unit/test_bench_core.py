"""`python -m stream_app.bench_core` keeps working (figures are not asserted: no timed tests)."""

import pytest

from stream_app import bench_core


def test_core_bench_folds_every_event_of_the_mix() -> None:
    run = bench_core.run_core(3000, queues=0)
    assert run.events == 3000
    assert run.accepted == 3000 and run.rejected == 0  # the bench mix is all valid, none late
    assert set(run.seconds) == {"decode", "apply", "drain+changelog", "merge", "total"}


def test_core_bench_prints_each_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_core.main(["--events", "2000", "--queues", "3"]) == 0
    out = capsys.readouterr().out
    assert "2,000 events, 3 queues, pure" in out or "compiled (" in out
    assert "µs/event" in out and "accepted 2,000, rejected 0" in out
