"""The sizing command runs end to end on a small population, for both stores."""

from __future__ import annotations

import pytest

from stream_app.state import sizing


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_sizing_reports_every_figure(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert sizing.main(["--tickets", "30", "--chats", "120", "--store", store, "--reads", "50"]) == 0
    out = capsys.readouterr().out
    assert "150 (30 tickets, 120 chats)" in out
    for name in ("bytes per chat", "RSS peak", "load time", "random get", "due() sweep", "restore"):
        assert name in out
