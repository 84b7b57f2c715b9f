"""Backfill: `stream-app connect zendesk --since DATE` reads Zendesk's incremental ticket
event export (here a local fake server serving fixture pages, with one 429 on the
way) and the worker shows the history's figures; a second run changes nothing."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import RUN, WorkerProcess, channel
from tests.integration.test_connectors import by_channel, figures, rebased, same

pytestmark = pytest.mark.integration
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "connectors" / "zendesk_export.json"
CHANNEL = channel("zendesk_backfill")
ANCHOR_S = 1796029200 + 1500  # the fixture's last audit


class FakeZendesk(http.server.ThreadingHTTPServer):
    """Serves the export's pages in order; the first request of page 2 gets a 429."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.requests: list[str] = []
        self.throttled = False
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    server: FakeZendesk

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        page = 1 if "cursor=p2" in self.path else 0
        if page == 1 and not self.server.throttled:
            self.server.throttled = True
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.end_headers()
            return
        body = json.dumps(self.server.pages[page]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def backfill(bootstrap: str, url: str, since: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stream_app", "connect", "zendesk", "--since", since, "--url", url],
        env={
            "PATH": "/usr/bin:/bin",
            "STREAM_APP_BROKER": bootstrap,
            "STREAM_APP_ZENDESK_CHANNELS": f"web_form:{CHANNEL}",
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_zendesk_backfill_gives_the_history_s_figures_and_a_rerun_changes_nothing(
    bootstrap: str, worker: WorkerProcess
) -> None:
    shift = int(time.time()) - 3600 - ANCHOR_S
    pages = rebased(json.loads(FIXTURE.read_text())["pages"], shift)
    for page in pages:
        for audit in page["ticket_events"]:
            audit["ticket_id"] = f"{audit['ticket_id']}-{RUN}"  # this session's own tickets
    server = FakeZendesk(pages)
    pages[0]["next_page"] = (
        f"http://127.0.0.1:{server.server_port}/api/v2/incremental/ticket_events.json?cursor=p2"
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ANCHOR_S + shift - 86400))
    try:
        first = backfill(bootstrap, url, since)
        # ticket 6001: created, description (not a reply), agent reply at +20 min, pending,
        # an internal note, solved at +25 min. Ticket 6002 was created before --since.
        expected = {
            "volume": {"tickets": 1, "chats": 0, "surveys": 0},
            "open_tickets": 0,
            "first_response": (1200.0, 1),
            "resolution": (1500.0, 1),
            "fcr": (1.0, 1),  # one agent reply, no customer follow-up, never reopened
        }
        keys = expected.keys()
        worker.wait_until(
            lambda: (
                same({k: figures(by_channel(worker)[CHANNEL])[k] for k in keys}, expected)
                if CHANNEL in by_channel(worker)
                else False
            ),
            120,
            "the backfilled figures",
        )
        second = backfill(bootstrap, url, since)
        time.sleep(3)  # let the worker see the rerun's records (duplicates)
        after = {k: figures(by_channel(worker)[CHANNEL])[k] for k in keys}
    finally:
        server.shutdown()
    assert (
        first
        == second
        == ("backfill: 2 pages, 4 audits → 4 events; skipped: 1 before --since, 2 nothing measured")
    )
    assert sum("cursor=p2" in r for r in server.requests) == 3  # a 429 (waited out), then page 2, twice
    assert same(after, expected), after
