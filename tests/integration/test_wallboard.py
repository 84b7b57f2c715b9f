"""The wallboard in a real browser (Debian's headless Chromium) on a real worker and broker.

What a supervisor sees must be exactly what the API says, change without a reload
when events arrive, take its colours from firing alerts, and say "stale since …"
when the worker goes away, then recover by itself.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream_app.core.timeutil import MINUTE_MS
from tests.factories import event, now_ms, records, seed_mix, survey
from tests.integration.harness import RUN, WorkerProcess, channel, produce, run_sync

pytestmark = [pytest.mark.integration, pytest.mark.broker_incidental]
WINDOW = "1h"
VIEWPORT = {"width": 1920, "height": 1080}
#: Chromium on a closed network: no background fetches, no first-run, no sandbox (root in CI).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = (
        os.environ.get("STREAM_APP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail("no Chromium: install Debian's `chromium` package or set STREAM_APP_CHROMIUM")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def rules_file(workdir: Path, ch: str) -> Path:
    common = {"for": "0s", "clear_for": "0s", "hysteresis": 0.0, "channels": [ch], "window": WINDOW}
    rules = [
        {"name": "wb_csat_low", "kind": "threshold", "metric": "csat", "op": "below", "threshold": 0.7,
         "min_samples": 20, "severity": "critical", **common},
        {"name": "wb_first_response_slow", "kind": "threshold", "metric": "first_response_p90", "op": "above",
         "threshold": 30, "min_samples": 5, "severity": "warning", **common},
    ]  # fmt: skip
    path = workdir / f"rules-wallboard-{RUN}.yaml"
    path.write_text(json.dumps({"rules": rules}))
    return path


# --- the page's formatting, in Python, to compare text as well as raw values --------


def js_round(x: float) -> int:
    return math.floor(x + 0.5)  # JavaScript's Math.round


def percent(v: float) -> str:
    return f"{js_round(v * 100)}%"


def duration(seconds: float) -> str:
    s = js_round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    return f"{s // 86_400}d {(s % 86_400) // 3600:02d}h"


def expected_cells(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Column → (raw value, sample size, text) as the wallboard must show them."""
    # tickets and chats are never mixed: the column shows the kind with more first responses
    chats, tickets = snap["chat_first_response_seconds"], snap["first_response_seconds"]
    frt = chats if chats["n"] > tickets["n"] else tickets
    volume = snap["volume"]["tickets"] + snap["volume"]["chats"]
    columns = {
        "csat": (snap["csat"]["value"], snap["csat"]["n"], percent),
        "nps": (snap["nps"]["value"], snap["nps"]["n"], lambda v: str(js_round(v))),
        "ces": (snap["ces"]["value"], snap["ces"]["n"], percent),
        "fcr": (snap["fcr"]["value"], snap["fcr"]["n"], percent),
        "svl": (snap["service_level"]["value"], snap["service_level"]["n"], percent),
        "rr": (snap["response_rate"]["value"], snap["response_rate"]["n"], percent),
        "frt": (frt["p90"], frt["n"], duration),
        "backlog": (snap["open_tickets"], None, str),
        "volume": (volume, None, str),
    }
    return {
        name: {"value": value, "n": n, "text": "—" if value is None else fmt(value)}
        for name, (value, n, fmt) in columns.items()
    }


READ_PAGE = """() => {
  const out = {};
  for (const row of document.querySelectorAll('#rows tr[data-channel]')) {
    const cells = {};
    for (const td of row.querySelectorAll('td[data-metric]')) {
      const figure = td.querySelector('.figure');
      const raw = figure.dataset.value;
      const n = td.querySelector('.sub').dataset.n;
      const trend = td.querySelector('.trend');
      cells[td.dataset.metric] = {
        value: raw === '' ? null : Number(raw), n: n === '' ? null : Number(n),
        text: figure.textContent, state: td.dataset.state, trend: trend ? trend.dataset.trend : null,
        lowN: td.dataset.lowN === 'true', sub: td.querySelector('.sub').textContent,
        opacity: Number(getComputedStyle(figure).opacity),
      };
    }
    out[row.dataset.channel] = cells;
  }
  return out;
}"""


def shown(page: Any) -> dict[str, dict[str, dict[str, Any]]]:
    result: dict[str, dict[str, dict[str, Any]]] = page.evaluate(READ_PAGE)
    return result


def page_matches_api(page: Any, worker: WorkerProcess, channels: list[str]) -> None:
    """Same figures on the page as in /api/v1/scores (retrying over a push or two)."""
    deadline = time.monotonic() + 15
    while True:
        api = {
            s["channel"]: expected_cells(s) for s in worker.scores(window=WINDOW) if s["channel"] in channels
        }
        page_cells = shown(page)
        got = {
            ch: {m: {k: c[k] for k in ("value", "n", "text")} for m, c in page_cells.get(ch, {}).items()}
            for ch in channels
        }
        if got == api or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == api


def test_wallboard_in_a_real_browser(
    browser: Any,
    worker: WorkerProcess,
    start_worker: Any,
    bootstrap: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alerting, calm = channel("wb_a"), channel("wb_b")
    # This worker does not own `calm` (not one of its channels): that row can only come
    # from cx.metrics, published by the shared session worker: the multi-worker view.
    own_channels = [c for c in worker.env["STREAM_APP_CHANNELS"].split(",") if c != calm]
    board_worker: WorkerProcess = start_worker(
        f"cx-wallboard-{RUN}",
        channel("probe"),
        STREAM_APP_RULES=str(rules_file(workdir, alerting)),
        STREAM_APP_CHANNELS=",".join(own_channels),
    )
    t = now_ms()
    earlier = [  # the hour before: CSAT 50% on the calm channel, for its trend arrow
        ("cx.surveys", survey("csat", 5 if i % 2 else 1, t - 80 * MINUTE_MS - i * 20_000, calm))
        for i in range(40)
    ]
    run_sync(produce(bootstrap, records(seed_mix(alerting, t) + seed_mix(calm, t) + earlier)))

    def api_ready() -> bool:
        snaps = {s["channel"]: s for s in board_worker.scores(window=WINDOW)}
        return (
            all(snaps.get(ch, {}).get("csat", {}).get("n") == 100 for ch in (alerting, calm))
            and (snaps[calm].get("previous") or {}).get("csat", {}).get("n") == 40
        )

    board_worker.wait_until(api_ready, 60, "both channels' figures in /api/v1/scores")
    assert calm not in json.loads(board_worker.get("/healthz"))["owned_channels"]

    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{board_worker.url}/wallboard?window={WINDOW}&channels={alerting},{calm}")
    page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads
    page.wait_for_selector(
        f'#banner .alert[data-rule="wb_csat_low"][data-channel="{alerting}"]', timeout=30_000
    )
    page.wait_for_selector(f'tr[data-channel="{calm}"]', timeout=10_000)

    # 1. The figures equal the API's, as numbers, sample sizes and text.
    page_matches_api(page, board_worker, [alerting, calm])

    # 2. Scores from fewer responses than the minimum sample (30) are dimmed, with their
    #    n and 95% interval: CES has 10 answers in the seed mix, CSAT 100.
    cells = shown(page)
    ces_api = next(s for s in board_worker.scores(window=WINDOW) if s["channel"] == calm)["ces"]
    assert ces_api["n"] == 10
    ces = cells[calm]["ces"]
    assert ces["lowN"] is True and ces["opacity"] < 0.5
    low, high = ces_api["ci95"]
    assert ces["sub"].endswith(f"n=10 · {percent(low)[:-1]}–{percent(high)}")
    assert cells[calm]["csat"]["lowN"] is False and cells[calm]["csat"]["opacity"] == 1

    # 2b. Colours come from the firing alerts; the banner names them.
    assert cells[alerting]["csat"]["state"] == "critical"
    assert cells[alerting]["frt"]["state"] == "warning"
    assert {c["state"] for c in cells[calm].values()} == {"ok"}
    banner = page.inner_text("#banner")
    assert f"CSAT on {alerting}" in banner and "CRITICAL" in banner

    # 3. Trend against the previous hour: 60% now vs 50% then.
    assert cells[calm]["csat"]["trend"] == "up"
    assert cells[alerting]["csat"]["trend"] is None  # nothing the hour before: no arrow
    assert page.inner_text("#status").strip() == "● live"

    # 4. Readable on a 1080p wall screen: big figures, every row on screen.
    #    Found and measured in one script: the board re-renders on every push, and an
    #    element handle taken one call earlier may be detached by then (font size "").
    figure_px = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('.figure')).fontSize)"
    )
    assert figure_px >= 36
    bottom = page.evaluate(
        "() => document.querySelector('#rows tr:last-child').getBoundingClientRect().bottom"
    )
    assert bottom <= VIEWPORT["height"]
    right = page.eval_on_selector_all(
        "#rows td", "tds => Math.max(...tds.map(td => td.getBoundingClientRect().right))"
    )
    assert right <= VIEWPORT["width"]
    clipped = page.eval_on_selector_all(
        "#rows td[data-metric]",
        "tds => tds.filter(td => td.scrollWidth > td.clientWidth)"
        ".map(td => [td.dataset.metric, td.innerText, td.scrollWidth, td.clientWidth])",
    )
    assert clipped == [], "figures that do not fit their cells"
    shot = workdir / "wallboard.png"
    page.screenshot(path=str(shot))

    # 5. New events change the page without a reload.
    unhappy = [("cx.surveys", survey("csat", 1, now_ms() - i * 1000, calm)) for i in range(50)]
    run_sync(produce(bootstrap, records(unhappy)))
    page.wait_for_function(
        f'() => document.querySelector(\'tr[data-channel="{calm}"] td[data-metric="csat"] .sub\')'
        ".dataset.n === '150'",
        timeout=30_000,
    )
    page_matches_api(page, board_worker, [alerting, calm])
    assert shown(page)[calm]["csat"]["text"] == "40%"  # 60 of 150
    assert page.evaluate("window.__sameDocument") is True

    # 6. Worker gone: the page says since when it is stale; back: it reconnects by itself.
    board_worker.stop()
    page.wait_for_function(
        "() => document.querySelector('#status').textContent.startsWith('stale since')", timeout=15_000
    )
    assert "stale" in page.evaluate("document.body.className")
    stale_shot = workdir / "wallboard-stale.png"
    page.screenshot(path=str(stale_shot))
    stale_text = page.inner_text("#status")
    board_worker.start()
    page.wait_for_function(
        "() => document.querySelector('#status').textContent === '● live'", timeout=120_000
    )
    page_matches_api(page, board_worker, [alerting, calm])
    assert page.evaluate("window.__sameDocument") is True
    assert errors == []
    with capsys.disabled():
        print(f"\n  wallboard screenshots: {shot} and {stale_shot} ({stale_text!r})")


SLA_PAGE = """() => {
  const out = {};
  for (const td of document.querySelectorAll('#rows tr[data-channel] td[data-metric]')) {
    const raw = td.querySelector('.figure').dataset.value;
    out[td.dataset.metric] = {value: raw === '' ? null : Number(raw), state: td.dataset.state};
  }
  out.head = [...document.querySelectorAll('#head th')].map((th) => th.textContent);
  return out;
}"""


def test_sla_view_in_a_real_browser(browser: Any, start_worker: Any, bootstrap: str, workdir: Path) -> None:
    """?view=sla: the live queue as the API has it, coloured at once by threshold rules."""
    ch = channel("wb_sla")
    common = {"for": "0s", "clear_for": "0s", "hysteresis": 0.0, "channels": [ch], "window": WINDOW}
    rules = [
        {"name": "wb_breaching", "kind": "threshold", "metric": "breaching_first_response", "op": "above",
         "threshold": 0, "min_samples": 1, "severity": "critical", **{**common, "for": "1h"}},
        {"name": "wb_chat_wait", "kind": "threshold", "metric": "oldest_waiting_chat_age", "op": "above",
         "threshold": 60, "min_samples": 1, "severity": "warning", **{**common, "for": "1h"}},
    ]  # fmt: skip
    path = workdir / f"rules-sla-{RUN}.yaml"
    path.write_text(json.dumps({"rules": rules}))
    sla_worker: WorkerProcess = start_worker(
        f"cx-wallboard-sla-{RUN}", channel("probe"), STREAM_APP_RULES=str(path)
    )
    t = now_ms()
    hour = 60 * MINUTE_MS
    events = [  # it_services: first response within 2 h
        ("cx.tickets", event("ticket.created", t - 3 * hour, ch, ticket_id=f"{ch}-late")),  # breaching
        ("cx.tickets", event("ticket.created", t - 2 * hour + 10 * MINUTE_MS, ch, ticket_id=f"{ch}-soon")),
        ("cx.tickets", event("ticket.created", t - 30 * MINUTE_MS, ch, ticket_id=f"{ch}-ok")),
        ("cx.tickets", event("ticket.agent_replied", t - 20 * MINUTE_MS, ch, ticket_id=f"{ch}-ok")),
        ("cx.chats", event("chat.started", t - 3 * MINUTE_MS, ch, chat_id=f"{ch}-c1")),  # waiting
    ]
    run_sync(produce(bootstrap, records(events)))

    def live() -> dict[str, Any]:
        snaps = sla_worker.scores(channel=ch, window=WINDOW)
        return snaps[0] if snaps else {}

    sla_worker.wait_until(
        lambda: live().get("live", {}).get("open_tickets") == 3 and live()["live"]["chats_waiting"] == 1,
        60,
        "the live queue in /api/v1/scores",
    )
    snap = live()
    assert snap["live"]["breaching"] == {"first_response": 1, "resolution": 0}
    assert snap["live"]["breach_soon"] == {"first_response": 1, "resolution": 0}

    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{sla_worker.url}/wallboard?view=sla&window={WINDOW}&channels={ch}")
    page.wait_for_selector(f'tr[data-channel="{ch}"] td[data-metric="breaching_fr"]', timeout=30_000)
    cells = page.evaluate(SLA_PAGE)
    snap = live()
    assert cells["head"][:3] == ["Channel", "Breaching 1st resp.", "Breaching resol."]
    assert cells["breaching_fr"] == {
        "value": 1,
        "state": "critical",
    }  # beyond the rule at once (its `for` is 1 h)
    assert cells["breaching_res"] == {"value": 0, "state": "ok"}
    assert cells["breach_soon"]["value"] == 1
    assert cells["waiting"]["value"] == 1
    assert cells["oldest_chat"]["state"] == "warning"
    assert abs(cells["oldest_chat"]["value"] - snap["live"]["oldest_waiting_chat_seconds"]) <= 3
    assert abs(cells["oldest_ticket"]["value"] - snap["live"]["oldest_open_ticket_seconds"]) <= 3
    # attainment over the hour: the answered ticket met its target; the late one's target
    # passed an hour ago, before the window: 1 of 1
    assert cells["sla_fr"]["value"] == snap["sla"]["first_response"]["value"] == 1.0
    clipped = page.eval_on_selector_all(
        "#rows td[data-metric]",
        "tds => tds.filter(td => td.scrollWidth > td.clientWidth).map(td => td.dataset.metric)",
    )
    assert clipped == [], "figures that do not fit their cells"
    page.screenshot(path=str(workdir / "wallboard-sla.png"))
    assert errors == []


def test_queue_view_in_a_real_browser(browser: Any, start_worker: Any, bootstrap: str, workdir: Path) -> None:
    """?by=queue: queue rows (across channels) under `all`, each equal to
    /api/v1/scores?queue=...; &queues= narrows it to a team's queues."""
    ch, other_ch = channel("wb_queue"), channel("wb_queue2")
    billing, tech = f"billing_{RUN}", f"tech_{RUN}"
    queue_worker: WorkerProcess = start_worker(
        f"cx-wallboard-queues-{RUN}", channel("probe"), STREAM_APP_QUEUES=f"{billing},{tech}"
    )
    t = now_ms()
    events: list[tuple[str, dict[str, Any]]] = []
    for i in range(40):  # CSAT across two channels; one in four unrouted (other)
        queue = [billing, tech, billing, None][i % 4]
        extra = {"queue": queue} if queue else {}
        rid = f"{ch}-r{i}"
        at = t - (i + 1) * MINUTE_MS // 2
        events.append(
            (
                "cx.surveys",
                event(
                    "survey.offered",
                    at - 5000,
                    ch if i % 2 else other_ch,
                    response_id=rid,
                    survey="csat",
                    **extra,
                ),
            )
        )
        if i % 3:
            events.append(
                (
                    "cx.surveys",
                    survey("csat", 2 + i % 4, at, ch if i % 2 else other_ch, response_id=rid, **extra),
                )
            )
    for i in range(12):  # chats: answered in 20 s or 90 s, or abandoned after 30 s
        cid, start = f"{ch}-c{i}", t - (20 - i) * MINUTE_MS
        extra = {"queue": billing if i % 2 else tech}
        events.append(("cx.chats", event("chat.started", start, ch, chat_id=cid, **extra)))
        if i % 3 == 2:
            events.append(
                ("cx.chats", event("chat.ended", start + 30_000, ch, chat_id=cid, resolved=False, **extra))
            )
        else:
            events.append(
                (
                    "cx.chats",
                    event(
                        "chat.agent_joined", start + (20_000 if i % 3 else 90_000), ch, chat_id=cid, **extra
                    ),
                )
            )
    run_sync(produce(bootstrap, records(events)))

    def api() -> dict[str, dict[str, Any]]:
        return {s["queue"]: s for s in queue_worker.scores(by="queue", window=WINDOW)}

    queue_worker.wait_until(
        lambda: (
            api().get(billing, {}).get("csat", {}).get("n") == 13
            and api().get(tech, {}).get("service_level", {}).get("n") == 6
        ),
        60,
        "queue figures in /api/v1/scores",
    )
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{queue_worker.url}/wallboard?by=queue&window={WINDOW}")
    page.wait_for_selector(f'tr[data-queue="{billing}"] td[data-metric="csat"]', timeout=30_000)
    deadline = time.monotonic() + 15
    while True:
        expected = {
            f"queue:{q}": expected_cells(s) for q, s in api().items() if q in (billing, tech, "other")
        }
        cells = shown(page)
        got = {
            row: {m: {k: c[k] for k in ("value", "n", "text")} for m, c in cells.get(row, {}).items()}
            for row in expected
        }
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == expected
    names = page.eval_on_selector_all("#rows tr td.channel .name", "els => els.map(e => e.textContent)")
    assert names[0] == "all" and names[-1] == "other" and {billing, tech} <= set(names)
    assert page.eval_on_selector("#head th.channel", "th => th.textContent") == "Queue"
    page.screenshot(path=str(workdir / "wallboard-queues.png"))
    # a team's screen: only its queues (and the all row)
    page.goto(f"{queue_worker.url}/wallboard?by=queue&window={WINDOW}&queues={tech}")
    page.wait_for_selector(f'tr[data-queue="{tech}"]', timeout=30_000)
    time.sleep(1.5)
    names = page.eval_on_selector_all("#rows tr td.channel .name", "els => els.map(e => e.textContent)")
    assert names == ["all", tech]
    clipped = page.eval_on_selector_all(
        "#rows td[data-metric]",
        "tds => tds.filter(td => td.scrollWidth > td.clientWidth).map(td => td.dataset.metric)",
    )
    assert clipped == [], "figures that do not fit their cells"
    # the widest first-response figures ("59m 59s", "99d 23h") fit too, on a team's
    # screen of two rows and no alert (the largest figures); rendered from the board
    # just pushed
    for seconds, text in ((59 * 60 + 59, "59m 59s"), (99 * 86_400 + 23 * 3600, "99d 23h")):
        clipped = page.evaluate(
            """(seconds) => {
                source.close();
                const board = structuredClone(lastBoard);
                board.alerts = [];  // no banner lines: the rows' figures at their largest
                for (const s of board.scores) {
                    for (const part of [s.first_response_seconds, s.chat_first_response_seconds]) {
                        if (part) { part.p90 = seconds; part.n = 1000; }  // not a low-n (smaller) figure
                    }
                }
                render(board);
                return [...document.querySelectorAll("#rows td[data-metric]")]
                    .filter((td) => td.scrollWidth > td.clientWidth)
                    .map((td) => [td.dataset.metric, td.innerText]);
            }""",
            seconds,
        )
        shown_frt = page.eval_on_selector_all(
            '#rows td[data-metric="frt"] .figure', "els => els.map(e => e.textContent)"
        )
        assert shown_frt == [text, text]
        assert clipped == [], f"{text}: figures that do not fit their cells"
    page.evaluate("() => connect()")
    assert "trend ▲▼ against the previous" in page.inner_text("#footer")
    # a team's screen naming a queue that is not reported (misspelt): refused, and the
    # page says why, rather than showing the centre's `all` row alone
    page.goto(f"{queue_worker.url}/wallboard?by=queue&window={WINDOW}&queues={tech.upper()}")
    page.wait_for_selector("#rows td.refused", timeout=30_000)
    assert f"{tech.upper()!r} is not a reported queue" in page.inner_text("#rows")
    assert page.query_selector("#rows td[data-metric]") is None  # no figures at all
    time.sleep(1.5)  # the status is refreshed every second: it keeps saying so
    assert page.inner_text("#status").strip() == "refused"
    # 24h has no previous window within retention: no arrows, and the footer says why
    page.goto(f"{queue_worker.url}/wallboard?by=queue&window=24h&queues={tech}")
    page.wait_for_selector(f'tr[data-queue="{tech}"]', timeout=30_000)
    time.sleep(1.5)
    assert "no trend: the 24h before lies beyond retention" in page.inner_text("#footer")
    assert page.query_selector("#rows .trend") is None
    assert errors == []
