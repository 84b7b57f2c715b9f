"""The worker's garbage-collector settings: fewer collections of its long-lived state.

CPython frees nearly all of the worker's garbage by reference counting: its facts,
partials and records hold no reference cycles. Its cyclic collector still runs every
700 net container allocations (the first threshold), and each run of an older
generation walks every object that survived into it. The worker allocates several
tuples and dicts per event and keeps days of state in memory (open contacts, window
buckets, sketches, the live queue), so at the default thresholds the collector walks
the same long-lived objects again and again, more often the more series there are.

`tune` collects start-up's garbage, then moves everything left from start-up
(imported modules, settings, the Faust app) out of the collector's reach
(`gc.freeze`) and raises the first threshold to `GEN0_THRESHOLD`; the older
generations keep their thresholds, so cyclic garbage is still collected (after
50,000 rather than 700 allocations). Measured in docs/performance.md ("Seventh
step").
"""

from __future__ import annotations

import gc

#: Net container allocations between collections of the youngest generation (CPython: 700).
GEN0_THRESHOLD = 50_000


def tune() -> None:
    """Collect start-up's garbage, freeze the objects left and raise the first
    collection threshold."""
    gc.collect()  # frozen garbage would stay for good
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
