"""The HTTP server: read-only, an optional bearer token, and 4xx (never a crash) for bad requests."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.integration.harness import RUN, WorkerProcess, channel

pytestmark = [pytest.mark.integration, pytest.mark.broker_incidental]
TOKEN = f"wallboard-secret-{RUN}-0123456789"
PROTECTED = ["/api/v1/scores", "/api/v1/stream?window=1h", "/wallboard", "/wallboard/wallboard.js"]
OPEN = ["/metrics", "/healthz"]


def status(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read(1)  # the event stream never ends: one byte is enough
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def raw_status(port: int, payload: bytes) -> int:
    """Send bytes as they are; return the status code of the answer (0 if none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        try:
            answer = sock.recv(200)
        except TimeoutError:
            return 0
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def test_token_read_only_and_malformed_requests(start_worker: Any) -> None:
    worker: WorkerProcess = start_worker(f"cx-http-{RUN}", channel("probe"), STREAM_APP_API_TOKEN=TOKEN)

    for path in PROTECTED:
        assert status(worker.url + path)[0] == 401, path
        assert status(worker.url + path, headers={"Authorization": "Bearer not-the-token"})[0] == 401, path
        assert status(worker.url + path, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
    for path in OPEN:
        assert status(worker.url + path)[0] == 200, path

    # A wall screen opens /wallboard?token=… once; the cookie carries it to the stream.
    code, headers = status(f"{worker.url}/wallboard?token={TOKEN}")
    assert code == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert status(worker.url + "/api/v1/stream?window=1h", headers={"Cookie": cookie.split(";")[0]})[0] == 200

    # Read-only: every route refuses writes.
    for path in [*PROTECTED, *OPEN]:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert status(worker.url + path, method, {"Authorization": f"Bearer {TOKEN}"})[0] == 405, (
                method,
                path,
            )

    malformed = [
        b"GARBAGE\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
        b"G\xffT /\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n",
        b"GET /api/v1/stream?window=%ZZ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\n\r\n",
    ]
    for payload in malformed:
        code = raw_status(worker.port, payload)
        assert 400 <= code < 500, (payload[:40], code)
        assert status(worker.url + "/healthz")[0] == 200  # and it keeps serving

    assert TOKEN not in worker.log_path.read_text(errors="replace")
