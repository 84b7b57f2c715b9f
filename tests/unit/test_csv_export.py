"""`/api/v1/scores.csv`: one row per snapshot, the same columns for every row
(null intervals included), values as in the JSON."""

import csv
import io

from stream_app.core.queues import public
from stream_app.csv_export import to_csv
from tests.unit.test_outputs import sample_snapshots
from tests.unit.test_queue_outputs import _snapshots as queue_snapshots


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_one_row_per_snapshot_with_the_json_s_values() -> None:
    snapshots = sample_snapshots()
    rows = _table(to_csv(snapshots))
    assert len(rows) == len(snapshots)
    chat = next(r for r in rows if r["channel"] == "chat" and r["window"] == "15m")
    snap = next(s for s in snapshots if s["channel"] == "chat" and s["window"] == "15m")
    assert float(chat["csat.value"]) == snap["csat"]["value"]
    assert (float(chat["csat.ci95_low"]), float(chat["csat.ci95_high"])) == tuple(snap["csat"]["ci95"])
    assert chat["nps.value"] == "" and chat["nps.ci95_low"] == ""  # no sample: empty, never 0
    assert chat["first_response_seconds.p90"] == ""
    assert not any(column.startswith("previous") for column in rows[0])


def test_queue_rows_name_their_queue() -> None:
    rows = _table(to_csv(public(s) for s in queue_snapshots()))
    assert {r["queue"] for r in rows} == {"", "billing", "tech", "other"}
    assert all(bool(r["queue"]) != bool(r["channel"]) for r in rows)


def test_no_snapshots_gives_a_header_only() -> None:
    assert to_csv([]) == "channel,queue,window,as_of\r\n"
