"""`stream-app connect zendesk --since DATE`: history from Zendesk's incremental ticket
event export, so a new deployment starts with the backlog and recent figures.

A thin shell: pages are fetched (following `next_page` until `end_of_stream`,
waiting out 429 `Retry-After`), each audit becomes webhook payloads
(`zendesk_export`), which map like live webhooks (`zendesk.map_webhook`) and are
produced with the receiver's producer. Events older than the state horizon
(STREAM_APP_OPEN_STATE_TTL: the worker would drop them) are skipped and counted,
as are audits of tickets created before `--since` (their history is missing:
never credited, SPEC §4) and what cannot be mapped.

Credentials: STREAM_APP_ZENDESK_SUBDOMAIN (or `--url`), STREAM_APP_ZENDESK_EMAIL
and STREAM_APP_ZENDESK_API_TOKEN (basic auth `email/token:token`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from stream_app.config import ConfigError, Settings
from stream_app.connectors.mapped import Ignored, Unmappable
from stream_app.connectors.settings import ConnectSettings
from stream_app.connectors.zendesk import map_webhook
from stream_app.connectors.zendesk_export import audit_payloads
from stream_app.core.timeutil import parse_rfc3339_ms

log = logging.getLogger("stream_app.connect")
EXPORT_PATH = "/api/v2/incremental/ticket_events.json"


@dataclass
class BackfillReport:
    pages: int = 0
    audits: int = 0
    produced: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (
            f"backfill: {self.pages} pages, {self.audits} audits → {self.produced} events; skipped: {skipped}"
        )


def export_url(url: str | None) -> str:
    base = url or os.environ.get("STREAM_APP_ZENDESK_SUBDOMAIN")
    if not base:
        raise ConfigError("STREAM_APP_ZENDESK_SUBDOMAIN (or --url) is needed for a Zendesk backfill")
    if "://" not in base:
        base = f"https://{base}.zendesk.com"
    return base.rstrip("/") + EXPORT_PATH


def _auth() -> aiohttp.BasicAuth | None:
    email, token = os.environ.get("STREAM_APP_ZENDESK_EMAIL"), os.environ.get("STREAM_APP_ZENDESK_API_TOKEN")
    return aiohttp.BasicAuth(f"{email}/token", token) if email and token else None


async def backfill_zendesk(
    settings: Settings,
    connect: ConnectSettings,
    producer: AIOKafkaProducer,
    since_s: int,
    now_ms: int,
    url: str | None = None,
) -> BackfillReport:
    report = BackfillReport()
    horizon_ms = now_ms - settings.open_state_ttl_ms
    tickets: dict[str, dict[str, Any]] = {}
    overrides = connect.channels.get("zendesk", {})
    next_url: str | None = f"{export_url(url)}?start_time={since_s}"
    async with aiohttp.ClientSession(auth=_auth(), timeout=aiohttp.ClientTimeout(total=60)) as session:
        while next_url:
            async with session.get(next_url) as response:
                if response.status == 429:
                    await asyncio.sleep(float(response.headers.get("Retry-After", "10")))
                    continue
                response.raise_for_status()
                page = orjson.loads(await response.read())
            report.pages += 1
            sent = []
            for audit in page.get("ticket_events") or []:
                report.audits += 1
                try:
                    payloads = audit_payloads(audit, tickets)
                except Unmappable as exc:
                    report.skipped[
                        "before --since" if "before the backfill" in str(exc) else "unmappable"
                    ] += 1
                    continue
                for payload in payloads:
                    try:
                        mapped = map_webhook(payload, overrides)
                    except Unmappable:
                        report.skipped["unmappable"] += 1
                        continue
                    if isinstance(mapped, Ignored):
                        report.skipped["nothing measured"] += 1
                        continue
                    for record in mapped:
                        if parse_rfc3339_ms(record.event["occurred_at"]) < horizon_ms:
                            report.skipped["older than the state horizon"] += 1
                            continue
                        value = orjson.dumps(record.event)
                        sent.append(await producer.send(record.topic, value, key=record.key.encode()))
                        report.produced += 1
            if sent:
                await asyncio.gather(*sent)
            next_url = None if page.get("end_of_stream", True) else page.get("next_page")
    return report
