"""`stream-app demo` stops everything it started whichever way it is stopped: Ctrl-C
(SIGINT), and `kill` / `timeout` / `docker stop` (SIGTERM). Before, SIGTERM left the
worker and the embedded broker running, the broker holding its port."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from stream_app.embedded_broker import free_port

pytestmark = [pytest.mark.integration, pytest.mark.broker_incidental]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_demo_stops_its_broker_and_worker(stop: signal.Signals) -> None:
    web_port = free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stream_app",
            "demo",
            "--backfill",
            "0",
            "--rate",
            "1",
            "--web-port",
            str(web_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        broker_port = None
        deadline = time.monotonic() + 120
        while broker_port is None and time.monotonic() < deadline:
            line = demo.stdout.readline()
            assert line, f"the demo exited early ({demo.poll()})"
            found = re.search(r"demo is running \(broker [\d.]+:(\d+)", line)
            if found:
                broker_port = int(found.group(1))
        assert broker_port is not None, "the demo did not start"
        while not _listening(web_port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _listening(broker_port) and _listening(web_port)
        demo.send_signal(stop)
        assert demo.wait(60) == 0
        time.sleep(1)
        assert not _listening(broker_port), "the embedded broker is still running"
        assert not _listening(web_port), "the worker is still running"
    finally:
        if demo.poll() is None:
            demo.kill()
