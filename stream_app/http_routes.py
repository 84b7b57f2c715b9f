"""The worker's HTTP routes (Faust web views): `/metrics`, the JSON API
(`/api/v1/scores`, `/api/v1/scores.csv`, `/api/v1/agents`), the wallboard and its
event stream, and `/healthz`. Views only parse the request and shape the answer;
what they show comes from `CxService`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import faust
import orjson
from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from stream_app import http_auth
from stream_app.core.queues import is_queue, queue_name
from stream_app.csv_export import to_csv
from stream_app.wallboard import PUSH_INTERVAL_S, RECONNECT_MS, STATIC, sse_event, static_file

if TYPE_CHECKING:
    from stream_app.service import CxService

Answer = Callable[[Mapping[str, str]], list[dict[str, Any]]]


def register_routes(app: faust.App, service: CxService) -> None:
    token = service.settings.api_token

    def denied(view: View, request: Request) -> Response | None:
        """401 unless the request carries the API token (when one is configured)."""
        raw: Any = request
        presented = http_auth.presented_token(raw.headers, raw.cookies, raw.query)
        if http_auth.allowed(token, presented):
            return None
        return view.json(
            {"error": "a bearer token is required"}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )

    async def answer(
        view: View, request: Request, ask: Answer, shape: Callable[[list[dict[str, Any]]], Response]
    ) -> Response:
        """A query view: the token, then the answer, or 400 naming what cannot be met."""
        if refusal := denied(view, request):
            return refusal
        try:
            found = ask(request.query)
        except ValueError as exc:
            return view.error(400, str(exc))
        return shape(found)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            body = service.instruments.exposition()
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/api/v1/scores")
    class ScoresView(View):
        async def get(self, request: Request) -> Response:
            return await answer(self, request, service.scores_for, self.json_bytes)

        def json_bytes(self, found: list[dict[str, Any]]) -> Response:
            return self.bytes(orjson.dumps(found), content_type="application/json")

    @app.page("/api/v1/scores.csv")
    class ScoresCsvView(View):
        """The same snapshots (and filters) as one CSV table (stream_app/csv_export.py)."""

        async def get(self, request: Request) -> Response:
            return await answer(self, request, service.scores_for, self.csv_bytes)

        def csv_bytes(self, found: list[dict[str, Any]]) -> Response:
            response = self.bytes(to_csv(found).encode(), content_type="text/csv")
            raw: Any = response
            raw.headers["Content-Disposition"] = 'inline; filename="cx-scores.csv"'
            return response

    @app.page("/api/v1/agents")
    class AgentsView(View):
        """Per-agent figures (JSON only: never Prometheus labels, SPEC §4)."""

        async def get(self, request: Request) -> Response:
            return await answer(self, request, service.agents_for, self.json_bytes)

        def json_bytes(self, found: list[dict[str, Any]]) -> Response:
            return self.bytes(orjson.dumps(found), content_type="application/json")

    @app.page("/api/v1/stream")
    class StreamView(View):
        """Server-Sent Events for the wallboard: one `board` event per second."""

        async def get(self, request: Request) -> Any:
            if refusal := denied(self, request):
                return refusal
            windows = service.settings.windows
            window = request.query.get("window") or ("1h" if "1h" in windows else windows[0])
            channels = [c for c in (request.query.get("channels") or "").split(",") if c]
            by = request.query.get("by") or "channel"
            if by not in ("channel", "queue"):
                return self.error(400, f"by must be channel or queue (got {by!r})")
            queues = [q for q in (request.query.get("queues") or "").split(",") if q]
            try:
                service.check_window(window)
                service.check_board(by, queues)
            except ValueError as exc:
                return self.error(400, str(exc))
            response = aiohttp_web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            await response.prepare(request)  # type: ignore[arg-type]
            await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
            try:
                while not service.app.should_stop:
                    payload = service.board(window, channels, by, queues)
                    await response.write(sse_event("board", orjson.dumps(payload)))
                    await asyncio.sleep(PUSH_INTERVAL_S)
            except (ConnectionResetError, asyncio.CancelledError):
                pass
            return response

    @app.page("/wallboard")
    class WallboardView(View):
        async def get(self, request: Request) -> Response:
            if refusal := denied(self, request):
                return refusal
            page = self.bytes(static_file("wallboard.html"), content_type="text/html")
            if token is not None:  # the page's script and event stream cannot send headers
                raw: Any = page
                raw.set_cookie(http_auth.COOKIE, token, httponly=True, samesite="Strict", path="/")
            return page

    @app.page("/wallboard/{name}")
    class WallboardAsset(View):
        async def get(self, request: Request, name: str) -> Response:
            if refusal := denied(self, request):
                return refusal
            if name not in STATIC:
                return self.error(404, "not found")
            return self.bytes(static_file(name), content_type=STATIC[name])

    @app.page("/healthz")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            waiting = service.waiting_for()
            return self.json(
                {
                    "status": "ok" if waiting is None else "not ready",
                    "ready": waiting is None,
                    "waiting_for": waiting,
                    "processing_guarantee": service.settings.guarantee,
                    "broker": service.settings.capabilities.describe(),
                    "owned_channels": [c for c in service.scoreboard.owned() if not is_queue(c)],
                    "owned_queues": [queue_name(c) for c in service.scoreboard.owned() if is_queue(c)],
                    "global_view_records": service.global_records,
                },
                status=200 if waiting is None else 503,
            )

    del (
        MetricsView,
        ScoresView,
        ScoresCsvView,
        AgentsView,
        StreamView,
        WallboardView,
        WallboardAsset,
        HealthView,
    )
