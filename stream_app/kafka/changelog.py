"""Reading changelog partitions back to their end: how both stages restore state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_to_end(
    restorer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    apply: Callable[[TopicPartition, list[Any]], None],
) -> int:
    """Read each of `tps` from its start to the end offset it has now, handing every
    fetch to `apply(tp, records)` in order (the changelog is never held in memory
    whole); returns how many records were read. `restorer` is a consumer without a
    group (read_committed), assigned nothing before and after."""
    if not tps:
        return 0
    restorer.assign(tps)
    try:
        await restorer.seek_to_beginning(*tps)
        ends = await restorer.end_offsets(tps)
        total = 0
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            fetched = await restorer.getmany(*pending, timeout_ms=500)
            for tp, messages in fetched.items():
                apply(tp, messages)
                total += len(messages)
            for tp in list(pending):
                if await restorer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return total
    finally:
        restorer.assign([])


async def seek_to_committed(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    fallback: Callable[[list[TopicPartition]], Awaitable[dict[TopicPartition, int]]] | None = None,
) -> dict[TopicPartition, int]:
    """Read the committed offset of each of `tps` again and fetch from there; where
    none is committed, from what `fallback` gives (an earlier group's offsets), else
    from the start. Returns the next offset to fetch per partition (0: the start).
    aiokafka reads the committed offsets as an assignment arrives, maybe before the
    stage fenced the partitions' previous owners."""
    found: dict[TopicPartition, int] = {}
    missing = []
    for tp in tps:
        committed = await consumer.committed(tp)
        if committed is None:
            missing.append(tp)
        else:
            consumer.seek(tp, committed)
            found[tp] = committed
    earlier = await fallback(missing) if fallback is not None and missing else {}
    for tp in missing:
        if tp in earlier:
            consumer.seek(tp, earlier[tp])
            found[tp] = earlier[tp]
        else:
            await consumer.seek_to_beginning(tp)
            found[tp] = 0
    return found
