"""`python -m stream_app.bench_core`: the pure core alone, no broker, no Faust.

Folds the bench's event mix (`bench.make_events`) the way stage 1 does, in
batches of `INTAKE_BATCH` per input topic: `Intake.read` (decode + validate),
`Intake.apply` (dedup, state machines, fact deltas) on a `Batch` record cache
over a memory store, `Partials.add`, then each batch's `drain` and the
changelog encoding; then the merge stage's share, every drained partial
merged into a `Scoreboard`. Prints microseconds per event for each step and
for the whole, so a change to the core (or compiling it with mypyc,
`scripts/build-compiled`) is measured without a broker's noise.

    python -m stream_app.bench_core --events 100000 [--queues 10] [--profile out.prof]

Which build ran is printed: `compiled` when the mypyc extension modules were
imported, `pure` otherwise (`stream_app.compiled_modules()`).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import sys
import time
from dataclasses import dataclass, field
from functools import partial

from stream_app import gc_tuning
from stream_app.bench import bench_queues, make_events
from stream_app.config import load
from stream_app.core import lifecycle
from stream_app.core.intake import INPUTS, Accepted, Decoded, Rejected
from stream_app.core.scoreboard import Partials, Scoreboard
from stream_app.core.store import Batch, MemoryStateStore
from stream_app.intake_stage import INTAKE_BATCH


@dataclass
class CoreRun:
    events: int
    seconds: dict[str, float] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0

    def per_event_us(self, step: str) -> float:
        return self.seconds[step] / self.events * 1e6


def _lap(run: CoreRun, step: str, since: float) -> float:
    """Add the time since `since` to `step`; return the clock now."""
    now = time.perf_counter()
    run.seconds[step] = run.seconds.get(step, 0.0) + now - since
    return now


def run_core(events: int, queues: int, seed: int = 7, tune_gc: bool = False) -> CoreRun:
    """Fold `events` bench events through the pure core; times per step (seconds).
    `tune_gc`: the worker's collector settings (`gc_tuning.tune`), after the data is made."""
    end_ms = 1_800_000_000_000
    queue_names = bench_queues(queues)
    env = {"STREAM_APP_QUEUES": ",".join(queue_names)} if queue_names else {}
    settings = load(env)  # agent figures off, as by default
    intake = settings.intake()
    timeline = intake.timeline
    kinds = {kind for _, kind, _ in INPUTS.values()}
    stores = {kind: MemoryStateStore(partial(lifecycle.expires_at, kind, keep=intake.keep)) for kind in kinds}
    scoreboard = Scoreboard(timeline, end_ms, settings.windows)
    data = make_events(events, seed, end_ms, queues=queues)
    by_topic: dict[str, list[bytes]] = {}
    for topic, _key, value in data.records:
        by_topic.setdefault(topic, []).append(value)
    run = CoreRun(len(data.records))
    gc.collect()
    if tune_gc:
        gc_tuning.tune()
    offsets = dict.fromkeys(by_topic, 0)
    while any(offsets[t] < len(v) for t, v in by_topic.items()):
        clock = time.perf_counter()
        decoded: list[tuple[str, str, Decoded | Rejected]] = []
        read = intake.read
        for topic, values in by_topic.items():  # one getmany's worth per topic
            kind = INPUTS[topic][1]
            start = offsets[topic]
            decoded.extend(
                (topic, kind, read(topic, raw, end_ms)) for raw in values[start : start + INTAKE_BATCH]
            )
            offsets[topic] = min(len(values), start + INTAKE_BATCH)
        clock = _lap(run, "decode", clock)

        batches = {kind: Batch(store) for kind, store in stores.items()}
        views = {kind: batch.view(0) for kind, batch in batches.items()}
        partials = Partials(timeline)
        for topic, kind, item in decoded:
            if isinstance(item, Rejected):
                run.rejected += 1
                continue
            outcome = intake.apply(topic, item, views[kind], end_ms)
            if type(outcome) is Accepted:
                partials.add(outcome.delta, outcome.queue)
                run.accepted += 1
        clock = _lap(run, "apply", clock)

        drained = partials.drain()
        for batch in batches.values():
            batch.commit(batch.changes())
        clock = _lap(run, "drain+changelog", clock)

        for series, summed in drained.items():
            scoreboard.apply(series, summed)
        _lap(run, "merge", clock)
    run.seconds["total"] = sum(run.seconds.values())
    return run


def main(argv: list[str] | None = None) -> int:
    import stream_app

    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m stream_app.bench_core", description=summary)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--queues", type=int, default=0, help="report N queues as well as channels")
    parser.add_argument("--profile", help="write a cProfile of the run to this file")
    args = parser.parse_args(argv)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    run = run_core(args.events, args.queues, tune_gc=True)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    compiled = stream_app.compiled_modules()
    build = f"compiled ({len(compiled)} modules)" if compiled else "pure"
    python = sys.version.split()[0]
    print(f"CX stream core bench: {run.events:,} events, {args.queues} queues, {build}, Python {python}")
    for step, seconds in run.seconds.items():
        print(f"  {step:<16} {run.per_event_us(step):7.2f} µs/event  ({seconds:.2f} s)")
    rate = run.events / run.seconds["total"]
    print(f"  {rate:,.0f} events/s through the core; accepted {run.accepted:,}, rejected {run.rejected:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
