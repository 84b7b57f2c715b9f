"""Bad configuration stops start-up with one line naming the variable."""

import os
import socket
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STREAM_APP_WEB_PORT", "http"),
        ("STREAM_APP_TIMEZONE", "Mars/Olympus"),
        ("STREAM_APP_WINDOWS", "15m,fortnight"),
        ("STREAM_APP_SLA_PRESET", "gold"),
        ("STREAM_APP_STORE", "redis://"),
        ("STREAM_APP_CHANNELS", "chat,all"),
        ("STREAM_APP_BROKER", "kafka://no port"),
    ],
)
def test_bad_configuration_is_one_clear_line(variable: str, value: str) -> None:
    env = {**os.environ, variable: value}
    done = subprocess.run(
        [sys.executable, "-m", "stream_app", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]


def test_a_web_port_in_use_is_one_clear_line() -> None:
    """A second worker on the same machine (seen by a new user): Faust failed with a traceback."""
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "STREAM_APP_WEB_PORT": str(port)}
        done = subprocess.run(
            [sys.executable, "-m", "stream_app", "worker"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"STREAM_APP_WEB_PORT={port}" in lines[0]
