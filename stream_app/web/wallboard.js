// CX stream wallboard: renders the `board` events pushed by /api/v1/stream.
// No build step, no dependencies. URL parameters: ?window=1h&channels=chat,email&view=sla,
// and ?by=queue (queue rows instead of channels) with an optional &queues=billing,vip (a team's screen).
"use strict";

const params = new URLSearchParams(location.search);
// `scores` (CSAT, NPS, ...) or `sla` (the live queue: breaching now, about to breach, oldest waiting)
let view = params.get("view") === "sla" ? "sla" : "scores";
const onlyChannels = params.get("channels") || "";
const by = params.get("by") === "queue" ? "queue" : "channel";
const onlyQueues = params.get("queues") || "";
let windowName = params.get("window") || "";
let source = null;
let lastMessageAt = 0; // browser clock, ms
let lastBoard = null;
let refusal = null; // why the worker refused this screen's query (shown instead of rows)
let clockFormat = null;

// A push arrives every second; after this long without one the connection is dead.
const CONNECTION_STALE_MS = 5000;

// Columns: how to read the figure, its sample size and its trend from a snapshot.
const COLUMNS = [
  { id: "csat", value: (s) => s.csat.value, n: (s) => s.csat.n, ci: (s) => s.csat.ci95, format: percent, better: +1 },
  { id: "nps", value: (s) => s.nps.value, n: (s) => s.nps.n, ci: (s) => s.nps.ci95, format: points, better: +1 },
  {
    id: "ces", value: (s) => s.ces.value, n: (s) => s.ces.n, ci: (s) => s.ces.ci95, format: percent, better: +1,
    extra: (s) => (s.ces.mean == null ? "" : ` · avg ${s.ces.mean.toFixed(1)}`),
  },
  { id: "fcr", value: (s) => s.fcr.value, n: (s) => s.fcr.n, ci: (s) => s.fcr.ci95, format: percent, better: +1 },
  {
    // chats answered within the service-level threshold (short abandons left out)
    id: "svl", value: (s) => (s.service_level ? s.service_level.value : null), n: (s) => (s.service_level ? s.service_level.n : null),
    ci: (s) => s.service_level && s.service_level.ci95, format: percent, better: +1, noTrend: true,
  },
  {
    // of the surveys offered in the window, the share answered so far
    id: "rr", value: (s) => (s.response_rate ? s.response_rate.value : null), n: (s) => (s.response_rate ? s.response_rate.n : null),
    ci: (s) => s.response_rate && s.response_rate.ci95, format: percent, better: +1, noTrend: true,
  },
  {
    // Tickets (hours) and chats (seconds) are never mixed: the row shows the kind
    // with more first responses in the window, and says which.
    id: "frt", value: (s) => firstResponse(s).p90, n: (s) => firstResponse(s).n,
    format: duration, better: -1,
    extra: (s) => (firstResponse(s).n ? ` · ${firstResponse(s) === s.first_response_seconds ? "tkt" : "chat"}` : ""),
  },
  { id: "backlog", value: (s) => s.open_tickets, format: count, better: -1, noTrend: true },
  {
    id: "volume", value: (s) => s.volume.tickets + s.volume.chats, format: count, better: 0,
    extra: (s) => `${s.volume.tickets} tkt · ${s.volume.chats} chat`,
  },
];

// The SLA view: live-queue gauges (now, not windowed) and the window's attainment.
// `rule` names the live metric whose threshold rules colour the cell at once.
const SLA_COLUMNS = [
  { id: "breaching_fr", title: "Breaching 1st resp.", value: (s) => s.live.breaching.first_response, format: count, rule: "breaching_first_response" },
  { id: "breaching_res", title: "Breaching resol.", value: (s) => s.live.breaching.resolution, format: count, rule: "breaching_resolution" },
  {
    id: "breach_soon", title: "Breach ≤ 15 min", value: (s) => s.live.breach_soon.first_response + s.live.breach_soon.resolution,
    format: count, rule: "breach_soon_first_response", rules: ["breach_soon_first_response", "breach_soon_resolution"],
    extra: (s) => `${s.live.breach_soon.first_response} resp · ${s.live.breach_soon.resolution} resol`,
  },
  { id: "oldest_ticket", title: "Oldest open ticket", value: (s) => s.live.oldest_open_ticket_seconds, format: duration, rule: "oldest_open_ticket_age",
    extra: (s) => `${s.live.open_tickets} open` },
  { id: "waiting", title: "Chats waiting", value: (s) => s.live.chats_waiting, format: count, rule: "chats_waiting" },
  { id: "oldest_chat", title: "Longest wait", value: (s) => s.live.oldest_waiting_chat_seconds, format: duration, rule: "oldest_waiting_chat_age" },
  {
    id: "sla_fr", title: "1st resp. SLA", value: (s) => s.sla.first_response.value, n: (s) => s.sla.first_response.n,
    ci: (s) => s.sla.first_response.ci95, format: percent, rule: "sla_first_response",
  },
];
for (const column of SLA_COLUMNS) column.noTrend = true; // live figures: no previous window

// Alert rule metric → the column it colours (others colour the channel name).
const ALERT_COLUMN = {
  csat: "csat", nps: "nps", ces: "ces", ces_mean: "ces", fcr: "fcr",
  first_response_mean: "frt", first_response_p50: "frt", first_response_p90: "frt",
  sla_first_response: "frt", open_tickets: "backlog", service_level: "svl", response_rate: "rr",
  chat_first_response_mean: "frt", chat_first_response_p50: "frt", chat_first_response_p90: "frt",
  sla_chat_first_response: "frt",
  volume_tickets: "volume", volume_chats: "volume", volume_surveys: "volume",
};
const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 };

function firstResponse(s) {
  const chats = s.chat_first_response_seconds;
  return chats && chats.n > s.first_response_seconds.n ? chats : s.first_response_seconds;
}
function percent(v) { return `${Math.round(v * 100)}%`; }
function points(v) { return `${Math.round(v)}`; }
function count(v) { return `${v}`; }
function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  // tickets open for days: "4d 02h", at most seven characters as the shorter forms
  return `${Math.floor(s / 86400)}d ${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function timeOf(ms) {
  return clockFormat ? clockFormat.format(new Date(ms)) : new Date(ms).toLocaleTimeString();
}

// Arrow against the same-length window just before this one; none when that is not held.
function trend(column, snap) {
  if (column.noTrend || !snap.previous) return "";
  const now = column.value(snap);
  const before = column.value(snap.previous);
  if (now == null || before == null) return "";
  const text = column.format(now) === column.format(before) ? "flat" : now > before ? "up" : "down";
  if (text === "flat") return `<span class="trend flat" data-trend="flat" title="same as the previous window">▶</span>`;
  const direction = text === "up" ? +1 : -1;
  const quality = column.better === 0 ? "neutral" : direction === column.better ? "good" : "bad";
  const arrow = text === "up" ? "▲" : "▼";
  return `<span class="trend ${quality}" data-trend="${text}" title="previous window: ${escapeHtml(column.format(before))}">${arrow}</span>`;
}

function severities(alerts) {
  // channel → column → worst firing severity ("channel" for metrics without a column).
  const out = {};
  for (const alert of alerts) {
    const byColumn = (out[alert.channel] ||= {});
    const key = ALERT_COLUMN[alert.metric] || "channel";
    if ((SEVERITY_RANK[byColumn[key]] ?? -1) < (SEVERITY_RANK[alert.severity] ?? 0)) {
      byColumn[key] = alert.severity;
    }
  }
  return out;
}

function stateClass(severity) {
  return severity === "warning" || severity === "critical" ? severity : "ok";
}

// A score from fewer responses than the board's minimum sample is noise-prone: shown
// dimmed, with its n and its 95% interval, so nobody acts on "NPS 50" from n=2.
function cell(column, snap, severity, minSample) {
  const value = column.value(snap);
  const n = column.n ? column.n(snap) : null;
  const shown = value == null ? "—" : column.format(value);
  const lowN = value != null && n != null && n < minSample;
  const ci = lowN && column.ci ? column.ci(snap) : null;
  // "40–89%": one unit sign for the pair keeps the line short enough for the cell
  const high = ci ? column.format(ci[1]) : "";
  const low = ci ? column.format(ci[0]).replace(/%$/, high.endsWith("%") ? "" : "%") : "";
  const interval = ci ? ` · ${low}–${high}` : "";
  // a dimmed cell shows why (n and interval) instead of its usual extra figure
  const extra = column.extra && !lowN ? column.extra(snap) : "";
  const sub = [n == null ? "" : `n=${n}`, interval, extra].join("").replace(/^ · /, "");
  return `<td class="metric ${stateClass(severity)}${lowN ? " low-n" : ""}" data-metric="${column.id}" data-state="${stateClass(severity)}" data-low-n="${lowN}" title="${lowN ? `only ${n} responses (fewer than ${minSample}): 95% interval${escapeHtml(interval.replace(" · ", " "))}` : ""}">
    <div><span class="figure${value == null ? " none" : ""}" data-value="${value == null ? "" : value}">${escapeHtml(shown)}</span></div>
    <div class="sub" data-n="${n == null ? "" : n}">${trend(column, snap)}${escapeHtml(sub)}</div></td>`;
}

function worst(a, b) {
  return (SEVERITY_RANK[a] ?? -1) >= (SEVERITY_RANK[b] ?? -1) ? a : b;
}

// SLA cells are coloured by the threshold rules they are beyond now (board.live_marks,
// judged on the server) and by any firing alert on their metric.
function slaSeverity(column, snap, board) {
  const marks = (board.live_marks || {})[snap.channel] || {};
  let severity;
  for (const metric of column.rules || [column.rule]) severity = worst(severity, marks[metric]);
  for (const alert of board.alerts) {
    if (alert.channel === snap.channel && alert.metric === column.rule) severity = worst(severity, alert.severity);
  }
  return severity;
}

function row(snap, board, marks) {
  const stale = board.now_ms - snap.updated_ms > board.row_stale_after_ms;
  const channelState = stateClass(marks.channel);
  const note = stale ? `<div class="stale-note">stale since ${escapeHtml(timeOf(snap.updated_ms))}</div>` : "";
  const cells = view === "sla"
    ? SLA_COLUMNS.map((c) => cell(c, snap, slaSeverity(c, snap, board), board.min_sample || 0)).join("")
    : COLUMNS.map((c) => cell(c, snap, marks[c.id], board.min_sample || 0)).join("");
  const label = snap.label || snap.channel;
  const queue = snap.channel.startsWith("queue:") ? ` data-queue="${escapeHtml(label)}"` : "";
  return `<tr class="${snap.channel === "all" ? "rollup" : ""}${stale ? " stale" : ""}" data-channel="${escapeHtml(snap.channel)}"${queue}>
    <td class="channel ${channelState}"><div class="name" title="${escapeHtml(label)}">${escapeHtml(label)}</div>${note}</td>${cells}</tr>`;
}

function renderBanner(alerts) {
  const banner = document.getElementById("banner");
  banner.hidden = alerts.length === 0;
  banner.innerHTML = alerts
    .map((a) => `<div class="alert ${escapeHtml(a.severity)}" data-rule="${escapeHtml(a.rule)}" data-channel="${escapeHtml(a.channel)}">
      ${escapeHtml(a.severity.toUpperCase())} · ${escapeHtml(a.summary)} · since ${escapeHtml(timeOf(Date.parse(a.started_at)))}</div>`)
    .join("");
}

function renderWindows(windows) {
  const nav = document.getElementById("windows");
  if (nav.dataset.windows === windows.join(",")) {
    for (const b of nav.children) b.setAttribute("aria-pressed", String(b.dataset.window === windowName));
    return;
  }
  nav.dataset.windows = windows.join(",");
  nav.innerHTML = windows
    .map((w) => `<button type="button" data-window="${escapeHtml(w)}" aria-pressed="${w === windowName}">${escapeHtml(w)}</button>`)
    .join("");
  for (const button of nav.children) button.addEventListener("click", () => selectWindow(button.dataset.window));
}

function renderHead() {
  const head = document.getElementById("head");
  if (head.dataset.view === view) return;
  head.dataset.view = view;
  if (!head.dataset.scores) head.dataset.scores = head.innerHTML;
  head.innerHTML = view === "sla"
    ? `<tr><th class="channel">${by === "queue" ? "Queue" : "Channel"}</th>${SLA_COLUMNS.map((c) => `<th data-column="${c.id}">${escapeHtml(c.title)}</th>`).join("")}</tr>`
    : head.dataset.scores.replace(">Channel<", by === "queue" ? ">Queue<" : ">Channel<");
  for (const b of document.querySelectorAll("#views button")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
}

function render(board) {
  lastBoard = board;
  refusal = null;
  windowName = board.window;
  renderHead();
  if (!clockFormat || clockFormat.resolvedOptions().timeZone !== board.timezone) {
    clockFormat = new Intl.DateTimeFormat("en-GB", {
      timeZone: board.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  }
  renderWindows(board.windows);
  const marks = severities(board.alerts);
  const rows = board.scores.map((s) => row(s, board, marks[s.channel] || {})).join("");
  document.documentElement.style.setProperty("--rows", String(Math.max(board.scores.length, 4) + 0.6 * board.alerts.length));
  document.getElementById("rows").innerHTML =
    rows || `<tr><td colspan="10" class="empty">no ${by === "queue" ? "queues" : "channels"} with figures yet</td></tr>`;
  renderBanner(board.alerts);
  document.getElementById("clock").textContent = timeOf(board.now_ms);
  document.getElementById("footer").textContent = view === "sla"
    ? `live queue now · SLA attainment over ${board.window}, open tickets past their target count as breached · times in ${board.timezone}`
    : board.scores.some((s) => s.previous)
      ? `window ${board.window} · trend ▲▼ against the previous ${board.window} · times in ${board.timezone}`
      : `window ${board.window} · no trend: the ${board.window === "today" ? "day" : board.window} before lies beyond retention · times in ${board.timezone}`;
  refreshStatus();
}

function refreshStatus() {
  const status = document.getElementById("status");
  let staleSince = null;
  if (refusal) {
    status.className = "status stale";
    status.textContent = "refused";
    return;
  }
  if (!lastBoard) {
    status.className = "status connecting";
    status.textContent = "connecting…";
    return;
  }
  if (Date.now() - lastMessageAt > CONNECTION_STALE_MS) staleSince = lastBoard.now_ms;
  else if (lastBoard.stale_since_ms != null) staleSince = lastBoard.stale_since_ms;
  document.body.classList.toggle("stale", staleSince != null);
  status.className = staleSince == null ? "status live" : "status stale";
  status.textContent = staleSince == null ? "● live" : `stale since ${timeOf(staleSince)}`;
}

function connect() {
  if (source) source.close();
  const query = new URLSearchParams();
  if (windowName) query.set("window", windowName);
  if (onlyChannels) query.set("channels", onlyChannels);
  if (by === "queue") query.set("by", "queue");
  if (onlyQueues) query.set("queues", onlyQueues);
  const url = `/api/v1/stream?${query}`;
  source = new EventSource(url);
  source.addEventListener("board", (event) => {
    lastMessageAt = Date.now();
    render(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    refreshStatus();
    // EventSource retries by itself unless the server answered with an error: then we do,
    // and show why it refused (a misspelt queue on a team's screen, an unknown window).
    if (source.readyState === EventSource.CLOSED) {
      showRefusal(url);
      setTimeout(connect, 3000);
    }
  });
}

async function showRefusal(url) {
  const abort = new AbortController();
  try {
    const answer = await fetch(url, { signal: abort.signal });
    if (answer.ok) return; // serving again: the next connect() shows the board
    refusal = (await answer.json()).error || `HTTP ${answer.status}`;
    lastBoard = null;
    document.getElementById("rows").innerHTML =
      `<tr><td colspan="10" class="empty refused">${escapeHtml(refusal)}</td></tr>`;
    refreshStatus();
  } catch (_) {
    // the worker is unreachable: the status already says so
  } finally {
    abort.abort(); // never keep a stream that answered
  }
}

function selectWindow(name) {
  windowName = name;
  params.set("window", name);
  history.replaceState(null, "", `?${params}`);
  connect();
}

function selectView(name) {
  view = name;
  params.set("view", name);
  history.replaceState(null, "", `?${params}`);
  if (lastBoard) render(lastBoard);
}

for (const button of document.querySelectorAll("#views button")) {
  button.addEventListener("click", () => selectView(button.dataset.view));
}
setInterval(refreshStatus, 1000);
connect();
