"""The bench's peer row: Quix Streams on the same topics, in the same run.

A peer doing far less than our worker, so the ratio says how much of our time is
the work we do: every record of the three input topics is decoded (JSON), re-keyed
by channel (`group_by`, a repartition topic as our intake's), and folded into a
one-minute tumbling window per channel holding CSAT counts (responses, satisfied:
score ≥ 4 of 5, SPEC §4) with RocksDB state and changelog topics, Quix's defaults.
No validation, no dedup, no state machines, no other metric.

Timed from the first record folded to the last (`.current()` emits one result per
record after its window update), in a child process of its own that reads the
pre-loaded topics from the beginning under a fresh consumer group, as the others.

Needs the optional `bench` extra (`pip install 'cx-stream[bench]'`: quixstreams,
which brings confluent-kafka/librdkafka).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from stream_app.core.formulas import SCALES, csat_satisfied

INPUT_TOPICS = ("cx.tickets", "cx.chats", "cx.surveys")


def csat_fields(event: dict[str, Any]) -> dict[str, Any]:
    """One record as the peer folds it: its channel, 1 if it is a CSAT response, and
    1 if that response is satisfied (`formulas.csat_satisfied`, as the service counts)."""
    is_csat = event.get("event_type") == "survey.submitted" and event.get("survey") == "csat"
    score, scale = event.get("score"), event.get("scale") or SCALES["csat"][0]
    satisfied = is_csat and isinstance(score, int) and csat_satisfied(score, int(scale))
    return {
        "channel": str(event.get("channel", "?")),
        "csat": 1 if is_csat else 0,
        "satisfied": 1 if satisfied else 0,
    }


def quix_main(bootstrap: str, expected: int, result_path: str) -> None:
    """The peer (runs in a child process): exits once `expected` records are folded."""
    from quixstreams import Application
    from quixstreams.dataframe.windows import Sum

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="cx-bench-quix-"),
        loglevel="WARNING",
    )
    seen = {"n": 0, "first": 0.0}

    def folded(_: Any) -> None:
        if not seen["n"]:
            seen["first"] = time.time()
        seen["n"] += 1
        if seen["n"] == expected:
            seconds = time.time() - seen["first"]
            Path(result_path).write_text(json.dumps({"events": expected, "seconds": seconds}))
            os._exit(0)

    for name in INPUT_TOPICS:
        sdf = app.dataframe(app.topic(name, value_deserializer="json"))
        sdf = sdf.apply(csat_fields).group_by("channel")
        sdf = sdf.tumbling_window(60_000).agg(responses=Sum("csat"), satisfied=Sum("satisfied")).current()
        sdf.update(folded)
    app.run()


def measure_quix(bootstrap: str, expected: int, workdir: Path, timeout_s: float) -> float:
    """The peer's events/s, or raise RuntimeError (not installed, stopped, timed out)."""
    from stream_app.bench import run_contender

    try:
        import quixstreams  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("the Quix row needs the bench extra: pip install 'cx-stream[bench]'") from exc
    result = workdir / "quix.json"
    return run_contender(
        "quix", ["stream_app.bench_quix", bootstrap, str(expected), str(result)], result, timeout_s
    )


if __name__ == "__main__":
    quix_main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
