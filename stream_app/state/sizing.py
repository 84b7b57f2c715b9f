"""How much memory and time the intake's held state costs, per store.

    python -m stream_app.state.sizing --tickets 350000 --chats 1400000 --store rocksdb
    python -m stream_app.state.sizing --tickets 350000 --chats 1400000 --store memory

Builds real states with the pure state machines (`lifecycle.apply_ticket_event`,
`apply_chat_event`: whatever shape they make today), spread evenly over `--days`
of event time, and commits them through a store the way the intake does
(`Batch` views over `--partitions` input partitions, one `view.get` per entity
before its write, `--batch` entities per commit). A closed ticket is created,
agent_replied, resolved; a chat is started, agent_joined, 20 messages (customer
and agent in turn), ended resolved.

Prints the entities held, the encoded bytes per entity (mean), the process's
RSS (VmRSS / VmHWM from /proc/self/status), the load time (all of it, and the
part spent in the store), a random `get`'s time, the time of a steady-state
`due()` sweep (one sweep interval past the earliest deadline), and the time and
peak RSS of a restore: every partition replaced by `load` from its changelog
records (streamed from a file, as from the changelog topic).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from stream_app.config import Settings
from stream_app.core import lifecycle
from stream_app.core.lifecycle import State
from stream_app.core.store import Batch, Change, Deadline, StateStore
from stream_app.core.timeutil import DAY_MS, MINUTE_MS, format_ms_fast
from stream_app.state import open_stores, state_dir

Event = dict[str, Any]
Fold = Callable[[State, Event, int], bool]
Script = Callable[[str, int], Iterator[tuple[Event, int]]]
#: The intake stage's expiry sweep interval (ms).
SWEEP_MS = 60_000
#: Messages per chat.
MESSAGES = 20
#: A changelog record in the file: key length (u16), value length (u32; TOMBSTONE: None).
_RECORD = struct.Struct(">HI")
TOMBSTONE = 0xFFFFFFFF


def proc_status_bytes(field_name: str) -> int:
    """A /proc/self/status memory figure (VmRSS, VmHWM, ...) in bytes; 0 if unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Start VmHWM again from the current RSS (Linux 4.0+); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def deadlines(settings: Settings) -> dict[str, Deadline]:
    """kind → deadline (event-time ms), as the intake stage builds them for `settings`."""
    keep = lifecycle.Keep.of(
        settings.timeline().retention_ms, settings.lifecycle_rules(), settings.open_state_ttl_ms
    )
    return {kind: partial(lifecycle.expires_at, kind, keep=keep) for kind in ("ticket", "chat")}


class Events:
    """Event dicts as the input topics carry them (128-bit random hex event ids)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def event(self, event_type: str, at_ms: int, channel: str, **fields: Any) -> Event:
        return {
            "event_id": f"{self.random.getrandbits(128):032x}",
            "event_type": event_type,
            "occurred_at": format_ms_fast(at_ms),
            "channel": channel,
            **fields,
        }

    def closed_ticket(self, ticket_id: str, t: int) -> Iterator[tuple[Event, int]]:
        channel = "email"
        yield self.event("ticket.created", t, channel, ticket_id=ticket_id, priority="normal"), t
        reply = t + 20 * MINUTE_MS
        yield self.event("ticket.agent_replied", reply, channel, ticket_id=ticket_id, agent_id="a1"), reply
        done = t + 120 * MINUTE_MS
        yield self.event("ticket.resolved", done, channel, ticket_id=ticket_id), done

    def chat(self, chat_id: str, t: int) -> Iterator[tuple[Event, int]]:
        channel = "chat"
        yield self.event("chat.started", t, channel, chat_id=chat_id), t
        joined = t + 30_000
        yield self.event("chat.agent_joined", joined, channel, chat_id=chat_id, agent_id="a1"), joined
        for i in range(MESSAGES):
            at = joined + (i + 1) * 15_000
            sender = "customer" if i % 2 == 0 else "agent"
            yield self.event("chat.message", at, channel, chat_id=chat_id, sender=sender), at
        end = joined + (MESSAGES + 1) * 15_000
        yield self.event("chat.ended", end, channel, chat_id=chat_id, resolved=True), end


class Changelog:
    """The changelog records of the build, one file per (kind, partition)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[tuple[str, int], IO[bytes]] = {}

    def path(self, kind: str, partition: int) -> Path:
        return self.directory / f"changelog-{kind}-{partition}.bin"

    def append(self, kind: str, partition: int, records: list[Change]) -> None:
        out = self.files.get((kind, partition))
        if out is None:
            out = self.files[(kind, partition)] = open(self.path(kind, partition), "wb")  # noqa: SIM115
        for key, value in records:
            raw = key.encode()
            out.write(_RECORD.pack(len(raw), TOMBSTONE if value is None else len(value)))
            out.write(raw)
            if value is not None:
                out.write(value)

    def close(self) -> None:
        for out in self.files.values():
            out.close()

    def read(self, kind: str, partition: int) -> Iterator[Change]:
        """The records, oldest first, never all in memory at once."""
        with open(self.path(kind, partition), "rb") as source:
            while header := source.read(_RECORD.size):
                key_length, value_length = _RECORD.unpack(header)
                key = source.read(key_length).decode()
                yield key, (None if value_length == TOMBSTONE else source.read(value_length))


@dataclass
class Figures:
    held: int = 0
    tickets: int = 0
    chats: int = 0
    ticket_bytes: int = 0
    chat_bytes: int = 0
    #: Seconds for the whole build, and for its store calls (gets + commits).
    load_s: float = 0.0
    store_s: float = 0.0
    #: Earliest deadline of any state (event-time ms).
    earliest_deadline: int | None = None


def build(
    stores: dict[str, StateStore],
    changelog: Changelog,
    tickets: int,
    chats: int,
    partitions: int,
    batch_size: int,
    start_ms: int,
    span_ms: int,
    seed: int,
) -> Figures:
    """Fold `tickets` closed tickets and `chats` chats into `stores`, in time order
    (the two kinds interleaved), `batch_size` entities per committed batch."""
    events = Events(seed)
    folds: dict[str, tuple[Fold, Script]] = {
        "ticket": (lifecycle.apply_ticket_event, events.closed_ticket),
        "chat": (lifecycle.apply_chat_event, events.chat),
    }
    figures = Figures()
    total = tickets + chats
    batches = {kind: Batch(store) for kind, store in stores.items()}
    clock = time.perf_counter
    pending = 0
    started = clock()
    for j in range(total):
        is_ticket = (j + 1) * tickets // total > j * tickets // total
        kind = "ticket" if is_ticket else "chat"
        number = j * tickets // total if is_ticket else j - j * tickets // total
        key = f"{kind[0]}-{number:09d}"
        view = batches[kind].view(zlib.crc32(key.encode()) % partitions)
        before = clock()
        state = view.get(key) or {}
        figures.store_s += clock() - before
        fold, script = folds[kind]
        for event, at_ms in script(key, start_ms + j * span_ms // total):
            fold(state, event, at_ms)
        view[key] = state
        pending += 1
        if pending >= batch_size or j == total - 1:
            for kind_of, batch in batches.items():
                changes = batch.changes()
                _count(figures, kind_of, batch, changes, stores[kind_of].deadline)
                for partition, records in changes.items():
                    changelog.append(kind_of, partition, records)
                before = clock()
                batch.commit(changes)
                figures.store_s += clock() - before
            pending = 0
    figures.load_s = clock() - started
    figures.held = sum(len(store) for store in stores.values())
    changelog.close()
    return figures


def _count(
    figures: Figures, kind: str, batch: Batch, changes: dict[int, list[Change]], deadline: Deadline
) -> None:
    for partition, records in changes.items():
        for key, value in records:
            size = len(value or b"")
            if kind == "ticket":
                figures.tickets += 1
                figures.ticket_bytes += size
            else:
                figures.chats += 1
                figures.chat_bytes += size
            when = deadline(batch.dirty[partition][key] or {})
            if when is not None and (figures.earliest_deadline is None or when < figures.earliest_deadline):
                figures.earliest_deadline = when


def random_reads(stores: dict[str, StateStore], tickets: int, chats: int, partitions: int, n: int) -> float:
    """Mean seconds per `get` of a random held entity."""
    pick = random.Random(7)
    keys = []
    for _ in range(n):
        kind = "ticket" if pick.random() * (tickets + chats) < tickets else "chat"
        count = tickets if kind == "ticket" else chats
        if count:
            key = f"{kind[0]}-{pick.randrange(count):09d}"
            keys.append((kind, key, zlib.crc32(key.encode()) % partitions))
    started = time.perf_counter()
    for kind, key, partition in keys:
        if stores[kind].get(key, partition) is None:
            raise AssertionError(f"{kind} {key} is missing")
    return (time.perf_counter() - started) / max(1, len(keys))


def mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream_app.state.sizing", description="Memory and time of the intake's held state."
    )
    parser.add_argument("--tickets", type=int, default=350_000, help="closed tickets held")
    parser.add_argument("--chats", type=int, default=1_400_000, help="chats held")
    parser.add_argument("--store", choices=("memory", "rocksdb"), default="rocksdb")
    parser.add_argument("--days", type=float, default=7.0, help="event time the entities are spread over")
    parser.add_argument("--partitions", type=int, default=4, help="input partitions this worker owns")
    parser.add_argument("--batch", type=int, default=5000, help="entities per committed batch")
    parser.add_argument("--cache-entries", type=int, default=None, help="RocksDB hot cache per kind")
    parser.add_argument("--data-dir", default=None, help="where the RocksDB goes (default: a temporary dir)")
    parser.add_argument("--reads", type=int, default=20_000, help="random gets timed after the load")
    parser.add_argument("--no-restore", action="store_true", help="skip the restore from the changelog")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    base_rss = proc_status_bytes("VmRSS")
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="cx-sizing-"))
    settings = Settings(
        store="memory://" if args.store == "memory" else "rocksdb://",
        data_dir=str(data_dir),
        instance_id=f"sizing-{os.getpid()}",
    )
    changelog_dir = Path(tempfile.mkdtemp(prefix="changelog-", dir=data_dir))
    changelog = Changelog(changelog_dir)
    stores = open_stores(settings, deadlines(settings), args.cache_entries)
    end_ms = (int(time.time() * 1000) // DAY_MS) * DAY_MS
    span_ms = int(args.days * DAY_MS)
    rows: list[tuple[str, str]] = []
    try:
        figures = build(
            stores,
            changelog,
            args.tickets,
            args.chats,
            args.partitions,
            args.batch,
            end_ms - span_ms,
            span_ms,
            args.seed,
        )
        after_load_rss = proc_status_bytes("VmRSS")
        read_s = random_reads(stores, args.tickets, args.chats, args.partitions, args.reads)
        sweep_at = (figures.earliest_deadline or end_ms) + SWEEP_MS
        started = time.perf_counter()
        due = {kind: store.due(sweep_at) for kind, store in stores.items()}
        sweep_s = time.perf_counter() - started
        due_keys = sum(len(keys) for found in due.values() for keys in found.values())
        rate = figures.held / max(figures.load_s, 1e-9)
        rows += [
            ("store", settings.store),
            ("entities held", f"{figures.held:,} ({figures.tickets:,} tickets, {figures.chats:,} chats)"),
            ("bytes per closed ticket (mean)", f"{figures.ticket_bytes / max(1, figures.tickets):.1f}"),
            ("bytes per chat (mean)", f"{figures.chat_bytes / max(1, figures.chats):.1f}"),
            ("encoded total", mb(figures.ticket_bytes + figures.chat_bytes)),
            ("RSS before", mb(base_rss)),
            ("RSS after load", mb(after_load_rss)),
            ("RSS peak, load + gets + sweep", mb(proc_status_bytes("VmHWM"))),
            (
                "load time",
                f"{figures.load_s:.1f} s ({rate:,.0f} entities/s), {figures.store_s:.1f} s in the store",
            ),
            ("random get", f"{read_s * 1e6:.1f} µs each ({args.reads:,} gets)"),
            ("due() sweep, steady state", f"{sweep_s * 1000:.1f} ms ({due_keys:,} keys due)"),
        ]
        if args.store == "rocksdb":
            from stream_app.state.rocksdb_store import RocksDBStateStore

            first = next(iter(stores.values()))
            assert isinstance(first, RocksDBStateStore)
            native = first.db.memory()
            rows.append(("RocksDB memory", ", ".join(f"{k} {mb(v)}" for k, v in native.items())))
            disk = sum(f.stat().st_size for f in state_dir(settings).rglob("*") if f.is_file())
            rows.append(("RocksDB on disk", mb(disk)))
        if not args.no_restore:
            peak_known = reset_peak_rss()
            started = time.perf_counter()
            for kind, store in stores.items():
                for partition in range(args.partitions):
                    if changelog.path(kind, partition).exists():
                        store.load(partition, changelog.read(kind, partition))
            restore_s = time.perf_counter() - started
            restored = sum(len(store) for store in stores.values())
            peak = mb(proc_status_bytes("VmHWM")) if peak_known else "unknown"
            rows.append(("restore (load every partition)", f"{restore_s:.1f} s, {restored:,} entities"))
            rows.append(("RSS after restore / its peak", f"{mb(proc_status_bytes('VmRSS'))} / {peak}"))
        # Last: its result (every key) is a big list of its own.
        full_at = end_ms + span_ms + 31 * DAY_MS
        started = time.perf_counter()
        everything = sum(len(keys) for store in stores.values() for keys in store.due(full_at).values())
        rows.append(
            ("due() sweep, everything due", f"{time.perf_counter() - started:.2f} s ({everything:,} keys)")
        )
    finally:
        width = max((len(name) for name, _ in rows), default=0)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        changelog.close()
        for store in stores.values():
            store.close()
        shutil.rmtree(changelog_dir, ignore_errors=True)
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
