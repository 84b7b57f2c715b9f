"""How much memory agent figures take in the merge stage (issue 14):

    python -m stream_app.agent_sizing [--agents 1000] [--contacts 40]

Builds the scoreboard a worker holds for `agents` agents who each handled `contacts`
contacts spread over the last 24 hours (a first response, a resolution and a CSAT
answer each), and reports the heap those agent series take (tracemalloc). Memory
is per agent active within retention (24 h + grace): an agent who stops working is
dropped once their buckets age out.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc

from stream_app import config
from stream_app.core import agents
from stream_app.core.aggregate import Aggregate
from stream_app.core.scoreboard import ChannelPartial, Scoreboard
from stream_app.core.timeutil import DAY_MS


def measure(agent_count: int, contacts: int, seed: int = 1) -> tuple[int, int]:
    """(bytes held by the agent series, buckets held) for the given load."""
    settings = config.load({})
    now = int(time.time() * 1000)
    timeline = settings.timeline()
    rnd = random.Random(seed)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    board = Scoreboard(timeline, now, settings.windows)
    for a in range(agent_count):
        series = agents.series("", f"agent-{a:05d}")
        for _ in range(contacts):
            at = now - rnd.randrange(DAY_MS)
            agg = Aggregate()
            agg.add_fact((series, at, "first_response", rnd.randrange(60_000, 7_200_000), 1), 1)
            agg.add_fact((series, at, "resolved_contact", 0, rnd.randrange(2)), 1)
            agg.add_fact((series, at, "csat", rnd.randrange(1, 6), 5), 1)
            partial = ChannelPartial()
            partial.buckets[timeline.bucket_of(at)] = agg
            board.apply(series, partial)
    board.advance(now)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    buckets = sum(len(w.buckets) for w in board.channels.values())
    return held, buckets


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=40, help="contacts per agent in the last 24 h")
    args = parser.parse_args()
    held, buckets = measure(args.agents, args.contacts)
    print(
        f"{args.agents:,} agents × {args.contacts} contacts in 24 h: {held / 2**20:,.1f} MB"
        f" ({held / args.agents / 1024:,.1f} KB per agent, {buckets:,} buckets)"
    )


if __name__ == "__main__":
    main()
