"""`/api/v1/scores.csv`: the snapshots of `/api/v1/scores` as one CSV table, for
people who paste figures into a spreadsheet.

One row per snapshot, one column per figure: nested fields are joined with `.`
(`csat.value`, `first_response_seconds.p90`, `sla.first_response.value`), a 95 %
interval becomes `.ci95_low` / `.ci95_high`, and `previous` (the window before) is
left out. The first columns name the row: `channel` or `queue`, `window`, `as_of`.
Values are as in the JSON (ratios 0–1 at full precision, seconds); an empty cell is
JSON's null (no sample, never a fake 0).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

HEAD = ("channel", "queue", "window", "as_of")
LEFT_OUT = frozenset({"previous"})


def _cells(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if prefix.endswith("ci95"):  # [low, high], or null: the same two columns either way
        low, high = node if isinstance(node, list) and len(node) == 2 else (None, None)
        yield f"{prefix}_low", low
        yield f"{prefix}_high", high
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _cells(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        yield prefix, ";".join(str(v) for v in node)
    else:
        yield prefix, node


def row(snapshot: dict[str, Any]) -> dict[str, Any]:
    """One snapshot flattened to {column: value}."""
    found: dict[str, Any] = {}
    for key, value in snapshot.items():
        if key in LEFT_OUT:
            continue
        if isinstance(value, (dict, list)):
            found.update(_cells(value, key))
        else:
            found[key] = value
    return found


def to_csv(snapshots: Iterable[dict[str, Any]]) -> str:
    """The CSV text (RFC 4180, header row first; no rows: the header of HEAD only)."""
    rows = [row(s) for s in snapshots]
    columns = [c for c in HEAD if any(c in r for r in rows)] or list(HEAD)
    for r in rows:
        columns.extend(c for c in r if c not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: _text(r.get(c)) for c in columns})
    return out.getvalue()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
