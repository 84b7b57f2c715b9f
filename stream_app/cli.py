"""`stream-app worker | demo | generate | bench`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from stream_app import config
from stream_app.config import ConfigError, Settings
from stream_app.generator import INTRADAY


def _settings(args: argparse.Namespace) -> Settings:
    return config.load(
        broker=config._brokers(args.broker) if getattr(args, "broker", None) else None,
        web_port=getattr(args, "web_port", None),
    )


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    import faust

    from stream_app.kafka.log_throttle import throttle_kafka_client_logs
    from stream_app.kafka.probe import prepare_broker
    from stream_app.service import CxService

    throttle_kafka_client_logs()
    _check_web_port(settings)
    settings = asyncio.run(prepare_broker(settings))
    asyncio.set_event_loop(asyncio.new_event_loop())
    service = CxService(settings)
    worker = faust.Worker(service.app, loglevel=settings.log_level.upper(), redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG when the level is WARNING
    # or above, so every library debug call builds a record: a service has no spinner.
    worker.spinner = None
    from stream_app import gc_tuning

    gc_tuning.tune()  # start-up is done: what exists now lives as long as the process
    worker.execute_from_commandline()
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    """The connectors' receiver (SPEC §7): webhooks in, §3 events out."""
    from dataclasses import replace

    from stream_app.connectors import settings as connect_settings
    from stream_app.connectors.receiver import serve
    from stream_app.kafka.log_throttle import throttle_kafka_client_logs
    from stream_app.kafka.probe import _init_producer_id
    from stream_app.topics import ensure_topics

    settings = _settings(args)
    connect = connect_settings.load()
    if args.port:
        connect = replace(connect, port=args.port)
    throttle_kafka_client_logs()

    since_s = None
    if args.source:
        if not args.since:
            raise ConfigError("stream-app connect zendesk needs --since DATE (e.g. 2026-11-01)")
        since_s = _since(args.since)

    async def run() -> None:
        await ensure_topics(settings)
        options = {"bootstrap_servers": settings.bootstrap, **settings.kafka_client_options()}
        idempotence, _ = await _init_producer_id(options, None, 15.0, False)
        capabilities = replace(settings.capabilities, idempotence=idempotence)
        ready = replace(settings, capabilities=capabilities)
        if since_s is None:
            await serve(ready, connect)
            return
        from stream_app.connectors.backfill import backfill_zendesk
        from stream_app.connectors.receiver import start_producer

        producer = await start_producer(ready)
        try:
            report = await backfill_zendesk(
                ready, connect, producer, since_s, int(time.time() * 1000), args.url
            )
        finally:
            await producer.stop()
        print(report.line(), flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _since(raw: str) -> int:
    """--since: a date (midnight UTC) or an RFC 3339 time → Unix seconds."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {raw!r} is not a date (2026-11-01) or an RFC 3339 time") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def cmd_generate(args: argparse.Namespace) -> int:
    from stream_app.core.timeutil import parse_duration_ms
    from stream_app.generator import DEMO_QUEUES, Drop, produce

    settings = _settings(args)
    drop = None
    if args.drop_channel:
        start = int(time.time() * 1000) + parse_duration_ms(args.drop_after)
        drop = Drop(args.drop_channel, start, start + parse_duration_ms(args.drop_for))
    sent = asyncio.run(
        produce(
            settings.bootstrap,
            args.rate,
            args.duration,
            args.seed,
            backfill_ms=parse_duration_ms(args.backfill),
            drop=drop,
            channels=list(settings.channels),
            queues=DEMO_QUEUES,
            offers=True,
        )
    )
    print(f"produced {sent} records to {settings.bootstrap}")
    return 0


def _print_scores(url: str) -> None:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/scores?window=15m", timeout=2) as response:
            scores: list[dict[str, Any]] = orjson.loads(response.read())
    except OSError:
        print("  (waiting for the worker…)")
        return
    if not scores:
        print("  (worker is joining the group; first scores appear within a minute)")
        return

    def pct(share: dict[str, Any]) -> str:
        return "   -" if share["value"] is None else f"{share['value'] * 100:3.0f}%"

    print(f"  {'channel':<10} {'CSAT':>5} {'n':>4} {'NPS':>5} {'FCR':>5} {'FRT p90':>8} {'open':>5}  (15m)")
    for snap in scores:
        nps = snap["nps"]["value"]
        p90 = snap["first_response_seconds"]["p90"]
        print(
            f"  {snap['channel']:<10} {pct(snap['csat']):>5} {snap['csat']['n']:>4} "
            f"{'-' if nps is None else f'{nps:.0f}':>5} {pct(snap['fcr']):>5} "
            f"{'-' if p90 is None else f'{p90:.0f}s':>8} {snap['open_tickets']:>5}",
            flush=True,
        )


def cmd_demo(args: argparse.Namespace) -> int:
    from stream_app.embedded_broker import EmbeddedBroker, free_port
    from stream_app.generator import DEMO_QUEUES, DEMO_QUEUES_REPORTED, Drop, produce
    from stream_app.topics import ensure_topics

    workdir = Path(tempfile.mkdtemp(prefix="cx-demo-"))
    broker = EmbeddedBroker(log_path=str(workdir / "broker.log"))
    print("starting the embedded Kafka-compatible broker (tansu)…")
    # `kill`, `timeout`, `docker stop` (SIGTERM) and a closed terminal (SIGHUP) stop
    # the demo as Ctrl-C does: with the worker and the broker (before, they were left
    # running, the broker holding its port).
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _interrupt)
    broker.start()
    worker: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    try:
        web_port = args.web_port or int(os.environ.get("STREAM_APP_WEB_PORT", "0")) or 6066
        if web_port == 6066 and not _port_free(web_port):
            web_port = free_port()
        env = {
            **os.environ,
            "STREAM_APP_BROKER": broker.url,
            "STREAM_APP_WEB_PORT": str(web_port),
            "STREAM_APP_DATA_DIR": str(workdir / "data"),
        }
        env.setdefault("STREAM_APP_QUEUES", ",".join(DEMO_QUEUES_REPORTED))
        env.setdefault("STREAM_APP_AGENT_FIGURES", "on")
        settings = config.load(env)
        desk = [c for c in ("email", "portal") if c in settings.channels]
        if not env.get("STREAM_APP_SCHEDULES") and desk:
            env["STREAM_APP_SCHEDULES"] = str(_demo_schedules(workdir, settings.timezone, desk))
            settings = config.load(env)
        asyncio.run(ensure_topics(settings))
        log = (workdir / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream_app", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://localhost:{web_port}"
        drop_start = int(time.time() * 1000) + args.drop_after * 1000
        drop = Drop("chat", drop_start, drop_start + args.drop_for * 1000)
        print(
            f"\nCX stream demo is running (broker {broker.bootstrap}, logs in {workdir})\n"
            f"  Wallboard           {url}/wallboard?window=15m\n"
            f"  Prometheus metrics  {url}/metrics\n"
            f"  JSON scores         {url}/api/v1/scores?window=15m\n"
            f"  CSAT drop on chat   {time.strftime('%H:%M:%S', time.localtime(drop_start / 1000))}"
            f" (+{args.drop_after}s) for {args.drop_for}s\n"
            f"Ctrl-C stops everything.\n"
        )

        async def print_alerts() -> None:
            from aiokafka import AIOKafkaConsumer

            consumer = AIOKafkaConsumer(
                "cx.alerts",
                bootstrap_servers=broker.bootstrap,
                group_id=None,
                isolation_level="read_committed",
            )
            await consumer.start()
            try:
                async for record in consumer:
                    alert = orjson.loads(record.value)
                    print(
                        f"ALERT {alert['state'].upper()} [{alert['severity']}] {alert['summary']}", flush=True
                    )
            finally:
                await consumer.stop()

        async def run() -> None:
            alerting = asyncio.create_task(print_alerts())
            generating = asyncio.create_task(
                produce(
                    broker.bootstrap,
                    args.rate,
                    None,
                    args.seed,
                    backfill_ms=args.backfill * 1000,
                    drop=drop,
                    channels=list(settings.channels),
                    timezone=settings.timezone,
                    intraday=DEMO_INTRADAY,
                    queues=DEMO_QUEUES,
                    offers=True,
                )
            )
            while not generating.done():
                await asyncio.sleep(10)
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker stopped; see {workdir / 'worker.log'}")
                print(time.strftime("%H:%M:%S"), flush=True)
                await asyncio.to_thread(_print_scores, url)
            alerting.cancel()
            await generating

        asyncio.run(run())
    except KeyboardInterrupt:
        print("\nstopping…")
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.stop()
        if log is not None:
            log.close()
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


#: The demo's arrivals: the generator's intraday curve with the night raised to 0.6 of
#: the day's mean, so a demo started at 3 a.m. still shows the CSAT-drop story.
DEMO_INTRADAY = tuple(max(v, 0.6) for v in INTRADAY)


def _demo_schedules(workdir: Path, timezone: str, channels: Sequence[str]) -> Path:
    """The demo's business hours: the email and portal SLA clocks run 07:00-22:00 every
    day (tickets open overnight show business time apart from calendar time); live
    channels are 24/7. The simulated agents still answer around the clock: simulating
    their shifts (`Generator(shifts=...)`) makes the demo's four days of history take
    about a minute instead of ten seconds."""
    path = workdir / "schedules.yaml"
    path.write_text(
        "calendars:\n"
        "  desk:\n"
        f"    timezone: {timezone}\n"
        '    hours: {daily: "07:00-22:00"}\n'
        "assign:\n"
        f"  channels: {{{', '.join(f'{c}: desk' for c in channels)}}}\n",
        encoding="utf-8",
    )
    return path


def _check_web_port(settings: Settings) -> None:
    """ConfigError (one line) when the worker's HTTP port cannot be listened on (a
    second worker on the same machine): Faust would fail later with a traceback."""
    import socket

    host, port = settings.web_host, settings.web_port
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise ConfigError(
            f"STREAM_APP_WEB_PORT={port}: cannot listen on {host}:{port} ({exc.strerror or exc});"
            " is another worker running here? Give each worker its own STREAM_APP_WEB_PORT"
        ) from None


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run one worker against the configured broker")
    worker.add_argument("--broker", help="overrides STREAM_APP_BROKER")
    worker.add_argument("--web-port", type=int, help="overrides STREAM_APP_WEB_PORT")
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser("demo", help="embedded broker + worker + generator, no setup")
    demo.add_argument("--web-port", type=int)
    demo.add_argument(
        "--rate", type=float, default=5.0, help="new contacts per second, the day's mean (~5 events each)"
    )
    demo.add_argument("--backfill", type=int, default=600, help="seconds of history produced at start")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--drop-after", type=int, default=180, help="seconds until the chat CSAT drop")
    demo.add_argument("--drop-for", type=int, default=300, help="seconds the drop lasts")
    demo.set_defaults(func=cmd_demo)

    generate = sub.add_parser("generate", help="produce synthetic events to a broker")
    generate.add_argument("--broker", help="overrides STREAM_APP_BROKER")
    generate.add_argument("--rate", type=float, default=5.0, help="new contacts per second (~4 events each)")
    generate.add_argument("--duration", type=float, default=60.0, help="seconds to run")
    generate.add_argument("--seed", type=int, default=1)
    generate.add_argument("--backfill", default="1h", help="history to produce first, e.g. 0s, 1h")
    generate.add_argument("--drop-channel", help="channel whose CSAT drops")
    generate.add_argument("--drop-after", default="60s")
    generate.add_argument("--drop-for", default="120s")
    generate.set_defaults(func=cmd_generate)

    connect = sub.add_parser(
        "connect", help="HTTP receiver for Zendesk, Intercom and Amazon Connect (SPEC §7)"
    )
    connect.add_argument("--broker", help="overrides STREAM_APP_BROKER")
    connect.add_argument("--port", type=int, help="overrides STREAM_APP_CONNECT_PORT")
    connect.add_argument(
        "source", nargs="?", choices=["zendesk"], help="backfill history from this source, then exit"
    )
    connect.add_argument("--since", help="backfill from this date or RFC 3339 time")
    connect.add_argument(
        "--url", help="the source's base URL (default https://$STREAM_APP_ZENDESK_SUBDOMAIN.zendesk.com)"
    )
    connect.set_defaults(func=cmd_connect)

    from stream_app import bench

    bench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"stream-app: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
