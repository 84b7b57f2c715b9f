"""The vendor payload fixtures (tests/fixtures/connectors) and a §3 schema check."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from stream_app.connectors.mapped import Mapped

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "connectors"
SCHEMA_OF = {"cx.tickets": "ticket", "cx.chats": "chat", "cx.surveys": "survey"}


def fixture(source: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / f"{source}.json").read_text())
    return loaded


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((ROOT.parents[2] / "schemas" / f"{name}.v1.json").read_text())
    return Draft202012Validator(schema)


def valid_events(mapped: list[Mapped]) -> list[dict[str, Any]]:
    """The events, each checked against its topic's §3 JSON Schema and keyed by its entity id."""
    for record in mapped:
        _validator(SCHEMA_OF[record.topic]).validate(record.event)
        id_field = {"cx.tickets": "ticket_id", "cx.chats": "chat_id", "cx.surveys": "response_id"}[
            record.topic
        ]
        assert record.key == record.event[id_field]
    return [record.event for record in mapped]
