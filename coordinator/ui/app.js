// The commitd dashboard: polls this coordinator's API and /metrics with the
// bearer token kept in sessionStorage, and draws what it finds. No library,
// nothing fetched from anywhere but this server.
"use strict";

const POLL_MS = 2000;
const WINDOW_S = 300;          // the charts show the last five minutes
const RATE_WINDOW_S = 60;      // averages in the summary and per participant
const DETAIL_LIMIT = 25;       // rows of each table whose branches are fetched
const RESOLVE_WAIT_MS = 15000;
const RESOLVE_AFTER_MS = 5000;  // younger in-doubt rows are usually being delivered right now
const FORCE_REASON = "heuristic decision forced from the dashboard by an operator";
const TOKEN_KEY = "commitd.token";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  admin: null,          // true/false once known, null while unknown
  samples: [],          // [{t: seconds, m: parsed metrics}], oldest first
  refreshing: false,
  pendingAction: null,  // what the confirmation dialog does on "yes"
  forceOffered: null,   // {txid, outcome}: the force the confirmation dialog offers
  inDoubtCount: undefined, // rows of the last in-doubt listing, when no gauge says it
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- HTTP

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { status: 0, ok: false, json: null, text: "", message: "cannot reach the coordinator: " + e.message };
  }
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON: /metrics */ }
  let message = "";
  if (!res.ok) {
    const err = json && json.error;
    message = err && err.message ? `${err.code}: ${err.message}` : `HTTP ${res.status}`;
    if (res.status === 401) message = "the token was refused (401): enter a valid token above";
    if (res.status === 403) message = "this token may not read this (403): " + (err ? err.message : "");
  }
  return { status: res.status, ok: res.ok, json, text, message };
}

const txPath = (txid) => "/v1/transactions/" + encodeURIComponent(txid);
const forcePath = (txid) => "/v1/admin/transactions/" + encodeURIComponent(txid) + "/force";
const closePath = (txid) => "/v1/admin/transactions/" + encodeURIComponent(txid) + "/close";

// ---------------------------------------------------------------- DOM helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fill(tbody, rows, columns, emptyText) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: columns, text: emptyText }))]));
}

function showError(name, message) {
  const p = document.querySelector(`[data-error="${name}"]`);
  if (!p) return;
  p.hidden = !message;
  p.textContent = message || "";
}

function summary(dl, items) {
  dl.replaceChildren(...items.map(([k, v, id]) =>
    el("div", {}, el("dt", { text: k }), el("dd", { text: v, "data-stat": id }))));
}

function formatAge(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "—";
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

function formatSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  return s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`;
}

function formatRate(r) {
  if (r === null || r === undefined || !isFinite(r)) return "—";
  return r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

// ---------------------------------------------------------------- Prometheus text

// name -> [{labels, value}]
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      }
    }
    const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : parseFloat(m[3]);
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value });
  }
  return out;
}

// The sum of a metric's series whose labels pass `keep`; null if the metric is absent.
function total(m, name, keep) {
  const series = m.get(name);
  if (!series) return null;
  let sum = 0;
  for (const s of series) if (!keep || keep(s.labels)) sum += s.value;
  return sum;
}

// Undecided transactions, as the in-flight table lists them: one left in
// doubt for an operator (3PC, or 2PC from its staging record) is counted (and
// listed) under in doubt instead. A coordinator without
// the undecided gauge: everything it holds.
function inFlightCount(m) {
  const undecided = total(m, "commitd_transactions_undecided");
  if (undecided === null) return total(m, "commitd_transactions_in_flight");
  const settledByOperator =
    total(m, "commitd_transactions_in_doubt", (l) => l.kind === "precommit_unknown" || l.kind === "staging_unknown") || 0;
  return Math.max(0, undecided - settledByOperator);
}

// A counter's increase between two samples (a restart resets it to its new value).
function increase(before, after) {
  if (before === null || after === null) return null;
  return after >= before ? after - before : after;
}

const isCommit = (l) => /^commit/.test(l.outcome || "");
const isAbort = (l) => /^abort/.test(l.outcome || "");

// {committed, aborted} counters, from commitd_transactions_total{outcome} or
// the older per-outcome counters; null when neither is there.
function outcomeCounters(m) {
  if (m.has("commitd_transactions_total")) {
    return { committed: total(m, "commitd_transactions_total", isCommit),
             aborted: total(m, "commitd_transactions_total", isAbort), source: "commitd_transactions_total" };
  }
  const c = total(m, "commitd_transactions_committed_total");
  const a = total(m, "commitd_transactions_aborted_total");
  if (c === null && a === null) return null;
  return { committed: c || 0, aborted: a || 0, source: "commitd_transactions_committed_total" };
}

const DURATION = "commitd_transaction_duration_seconds";

// Cumulative bucket counts by upper bound, summed over every label but le.
function buckets(m, name, keep) {
  const series = m.get(name + "_bucket");
  if (!series) return null;
  const byLe = new Map();
  for (const s of series) {
    if (keep && !keep(s.labels)) continue;
    const le = s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le);
    byLe.set(le, (byLe.get(le) || 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}

// Like Prometheus's histogram_quantile over the increase of the buckets.
function quantile(q, before, after) {
  if (!before || !after) return null;
  const old = new Map(before);
  const inc = after.map(([le, v]) => [le, increase(old.has(le) ? old.get(le) : 0, v)]);
  if (!inc.length) return null;
  const count = inc[inc.length - 1][1];
  if (!count) return null;
  const rank = q * count;
  let prevLe = 0, prevCount = 0;
  for (const [le, c] of inc) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(1e-9, c - prevCount));
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

// Mean of a histogram over an interval: increase of _sum / increase of _count.
function mean(before, after, name, keep) {
  const s = increase(total(before, name + "_sum", keep), total(after, name + "_sum", keep));
  const c = increase(total(before, name + "_count", keep), total(after, name + "_count", keep));
  return s === null || c === null || c === 0 ? null : s / c;
}

// The sample nearest to `seconds` before the newest one (the oldest if none is that old).
function sampleAgo(seconds) {
  const last = state.samples[state.samples.length - 1];
  let pick = state.samples[0];
  for (const s of state.samples) if (s.t <= last.t - seconds) pick = s;
  return pick;
}

// ---------------------------------------------------------------- charts

const COLORS = ["#2457c5", "#c62828", "#1a7f37", "#a15c00"];

// series: [{label, points: [[t seconds, value]]}]; a hand-drawn line chart of the last WINDOW_S seconds.
function drawChart(canvas, series, now) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio)) canvas.width = Math.round(w * ratio);
  if (canvas.height !== Math.round(h * ratio)) canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 48, right = 8, top = 20, bottom = 18;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (isFinite(v) && v > max) max = v;
  max = max > 0 ? 4 * niceCeil((max * 1.1) / 4) : 1;  // four gridline steps of a round size
  const x = (t) => left + ((t - (now - WINDOW_S)) / WINDOW_S) * (w - left - right);
  const y = (v) => top + (1 - v / max) * (h - top - bottom);
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#dde1e8";
  ctx.fillStyle = "#6b7385";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, Math.round(y(v)) + 0.5);
    ctx.lineTo(w - right, Math.round(y(v)) + 0.5);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(String(Number(v.toPrecision(3))), left - 4, y(v) + 4);
  }
  for (let m = 0; m <= WINDOW_S / 60; m++) {
    ctx.textAlign = m === 0 ? "right" : m === WINDOW_S / 60 ? "left" : "center";
    ctx.fillText(m === 0 ? "now" : `-${m} min`, x(now - m * 60), h - 4);
  }
  let legendX = left;
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    for (const [t, v] of s.points) {
      if (!isFinite(v) || t < now - WINDOW_S) { drawing = false; continue; }
      if (drawing) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
      drawing = true;
    }
    ctx.stroke();
    ctx.fillStyle = color;
    ctx.textAlign = "left";
    ctx.fillRect(legendX, 6, 10, 3);
    ctx.fillText(s.label, legendX + 14, 12);
    legendX += 24 + ctx.measureText(s.label).width;
  });
  if (!series.some((s) => s.points.length)) {
    ctx.fillStyle = "#6b7385";
    ctx.textAlign = "center";
    ctx.fillText("no data yet", w / 2, h / 2);
  }
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

// ---------------------------------------------------------------- sections

function renderGroup(r) {
  if (!r.ok) {
    showError("group", r.message);
    $("node").textContent = r.status === 401 ? "not signed in" : "connected";
    return;
  }
  showError("group", "");
  const c = r.json;
  const leaderKnown = c.leader !== "";
  $("node").textContent = `member ${c.id} (${c.role})` + (leaderKnown && c.leader !== c.id ? `, leader ${c.leader}` : "");
  const items = [["this member", c.id, "id"], ["role", c.role, "role"], ["leader", leaderKnown ? c.leader : "none yet", "leader"],
                 ["term", c.term, "term"], ["commit index", c.commit_index, "commit_index"]];
  if (c.applied_index !== undefined) items.push(["applied index", c.applied_index, "applied_index"]);
  summary($("group-summary"), items);
  const rows = (c.members || []).map((m) => el("tr", { "data-member": m.id },
    el("td", {}, m.id, m.id === c.id ? el("span", { class: "muted", text: " (this one)" }) : null),
    el("td", { text: m.role || (m.id === c.leader ? "leader" : "follower") }),
    el("td", { text: m.membership || (c.members.length === 1 ? "single node" : "—") }),
    el("td", { class: "num", text: m.match_index !== undefined ? m.match_index : "—" }),
    el("td", { class: "mono" }, m.id !== c.id && /^https?:\/\//.test(m.url || "")
      ? el("a", { href: m.url.replace(/\/$/, "") + "/ui/", text: m.url }) : m.url)));
  fill($("members"), rows, 5, "no members");
}

function renderParticipants(r, m, before) {
  if (!r.ok) {
    showError("participants", r.message);
    return;
  }
  showError("participants", "");
  const rtt = "commitd_participant_round_trip_seconds";
  const haveRtt = m && m.has(rtt + "_count");
  const now = Date.now();
  const rows = r.json.participants.map((p) => {
    const latency = (phase) => {
      if (!haveRtt || !before) return "—";
      return formatSeconds(mean(before, m, rtt, (l) => l.participant === p.name && l.phase === phase));
    };
    const healthy = p.healthy;
    return el("tr", { "data-participant": p.name },
      el("td", { text: p.name }),
      el("td", { class: healthy ? "healthy" : "unhealthy", title: p.last_error || "", text: healthy ? "healthy" : "unhealthy" }),
      el("td", { text: p.last_seen_ms > 0 ? formatAge(now - p.last_seen_ms) + " ago" : "never" }),
      el("td", { class: "num", text: latency("prepare") }),
      el("td", { class: "num", text: latency("commit") }),
      el("td", { class: "mono", text: p.url }));
  });
  fill($("participants"), rows, 6, "no participants registered");
}

function renderRates(r) {
  if (!r.ok) {
    showError("metrics", r.message);
    return null;
  }
  showError("metrics", "");
  const m = parseMetrics(r.text);
  const t = Date.now() / 1000;
  state.samples.push({ t, m });
  while (state.samples.length > 2 && state.samples[0].t < t - WINDOW_S - 10) state.samples.shift();
  const notes = [];

  // Throughput and latency for each interval between two polls.
  const committed = [], aborted = [], p50 = [], p99 = [], avg = [];
  let source = null, haveHistogram = false;
  for (let i = 1; i < state.samples.length; i++) {
    const a = state.samples[i - 1], b = state.samples[i];
    const dt = b.t - a.t;
    const ca = outcomeCounters(a.m), cb = outcomeCounters(b.m);
    if (ca && cb && dt > 0) {
      committed.push([b.t, increase(ca.committed, cb.committed) / dt]);
      aborted.push([b.t, increase(ca.aborted, cb.aborted) / dt]);
      source = cb.source;
    }
    if (a.m.has(DURATION + "_bucket") && b.m.has(DURATION + "_bucket")) {
      haveHistogram = true;
      const ba = buckets(a.m, DURATION), bb = buckets(b.m, DURATION);
      const q50 = quantile(0.5, ba, bb), q99 = quantile(0.99, ba, bb), mu = mean(a.m, b.m, DURATION);
      if (q50 !== null) p50.push([b.t, q50 * 1000]);
      if (q99 !== null) p99.push([b.t, q99 * 1000]);
      if (mu !== null) avg.push([b.t, mu * 1000]);
    }
  }
  drawChart($("throughput-chart"), [{ label: "committed/s", points: committed }, { label: "aborted/s", points: aborted }], t);
  drawChart($("latency-chart"), [{ label: "p50", points: p50 }, { label: "p99", points: p99 }, { label: "mean", points: avg }], t);

  // The summary: averages over the last minute, gauges now.
  const past = sampleAgo(RATE_WINDOW_S);
  const span = t - past.t;
  const cNow = outcomeCounters(m), cPast = outcomeCounters(past.m);
  const perS = (k) => (cNow && cPast && span > 0 ? increase(cPast[k], cNow[k]) / span : null);
  const inFlight = inFlightCount(m);
  let inDoubt = total(m, "commitd_transactions_in_doubt");
  if (inDoubt === null) inDoubt = state.inDoubtCount !== undefined ? state.inDoubtCount : null;
  const items = [["committed/s", formatRate(perS("committed")), "committed_per_s"],
                 ["aborted/s", formatRate(perS("aborted")), "aborted_per_s"]];
  if (m.has(DURATION + "_bucket")) {
    const b0 = buckets(past.m, DURATION), b1 = buckets(m, DURATION);
    items.push(["latency p50", formatSeconds(quantile(0.5, b0, b1)), "p50"],
               ["latency p99", formatSeconds(quantile(0.99, b0, b1)), "p99"]);
  }
  items.push(["in flight", inFlight === null ? "—" : inFlight, "in_flight"], ["in doubt", inDoubt === null ? "—" : inDoubt, "in_doubt"]);
  const foreign = total(m, "commitd_transactions_in_doubt_foreign_log");
  if (foreign) items.push(["in doubt under another log", foreign, "in_doubt_foreign_log"]);
  summary($("stats"), items);
  $("window").textContent = `(this member's /metrics, every ${POLL_MS / 1000} s; averages over the last ${Math.round(Math.min(span, RATE_WINDOW_S)) || 0} s)`;

  if (!cNow) notes.push("no transaction counters in /metrics");
  else if (source !== "commitd_transactions_total" && cNow.source !== "commitd_transactions_total") notes.push("throughput from commitd_transactions_committed_total / _aborted_total");
  if (!haveHistogram && !m.has(DURATION + "_bucket")) notes.push(`latency needs the histogram ${DURATION}, which this coordinator does not export`);
  $("metrics-note").textContent = notes.join("; ");
  return m;
}

function branchTags(detail) {
  if (!detail) return el("span", { class: "muted", text: "…" });
  if (!detail.ok) return el("span", { class: "muted", text: detail.message });
  const span = el("span");
  for (const b of detail.json.branches || []) {
    const bad = !!b.last_error;
    const text = `${b.participant}: ${b.state}` + (b.attempts ? ` (${b.attempts} attempts)` : "");
    span.append(el("span", { class: "tag" + (bad ? " bad" : ""), title: b.last_error || "", "data-branch": b.participant, text }));
  }
  return span;
}

function txLink(txid) {
  return el("button", { class: "link mono", type: "button", onclick: () => search(txid), text: txid });
}

// What an admin token may do about an unfinished transaction: force a 3PC one
// left in doubt (undecided), close one a participant contradicted, or have a
// decided one delivered now.
function settleActions(tx, detail) {
  if (!state.admin || tx.state === "finished") return null;
  if (tx.outcome === "pending") return tx.in_doubt ? forceButtons(tx.txid) : null;
  if (tx.state === "contradicted") {
    return el("button", { type: "button", class: "danger", "data-close": tx.txid,
                          onclick: () => askClose(tx.txid, tx.outcome), text: "Close…" });
  }
  return resolveButton(tx, detail);
}

// Offered once a delivery failed or the decision is older than a normal delivery.
function resolveButton(tx, detail) {
  const failing = detail && detail.ok && (detail.json.branches || []).some((b) => b.last_error);
  if (!failing && !(tx.age_ms >= RESOLVE_AFTER_MS)) return null;
  return el("button", { type: "button", class: "danger", "data-resolve": tx.txid,
                        onclick: () => askResolve(tx.txid, tx.outcome), text: "Resolve…" });
}

function forceButtons(txid) {
  return el("span", { class: "actions" }, ...["commit", "abort"].map((outcome) =>
    el("button", { type: "button", class: "danger", "data-force": outcome,
                   onclick: () => askForce(txid, outcome), text: `Force ${outcome}…` })));
}

async function renderTransactions(list, kind) {
  const name = kind === "in_doubt" ? "in_doubt" : "pending";
  const tbody = $(kind === "in_doubt" ? "in-doubt" : "in-flight");
  if (!list.ok) {
    showError(name, list.message);
    return;
  }
  showError(name, "");
  // A 3PC transaction in doubt is undecided too (state=pending lists it): it belongs to the in-doubt table alone.
  const txs = list.json.transactions.filter((t) => kind === "in_doubt" || !t.in_doubt);
  if (kind === "in_doubt") state.inDoubtCount = txs.length;
  const details = await Promise.all(txs.slice(0, DETAIL_LIMIT).map((t) => api("GET", txPath(t.txid))));
  const rows = txs.map((t, i) => {
    const cells = [el("td", { class: "txid" }, txLink(t.txid))];
    if (kind === "in_doubt") cells.push(el("td", { class: t.outcome, text: t.outcome + (t.heuristic ? " (heuristic)" : "") }));
    else cells.push(el("td", { text: t.protocol }));
    // The detail was fetched after the list: show the state its branches are in.
    const detail = i < DETAIL_LIMIT && details[i] && details[i].ok ? details[i].json : null;
    cells.push(el("td", { text: detail && detail.state ? detail.state : t.state }),
               el("td", { class: "num", text: formatAge(t.age_ms) }),
               el("td", {}, i < DETAIL_LIMIT ? branchTags(details[i]) : el("span", { class: "muted", text: "search for details" })));
    if (kind === "in_doubt") cells.push(el("td", {}, settleActions(t, details[i])));
    return el("tr", { "data-txid": t.txid }, ...cells);
  });
  fill(tbody, rows, kind === "in_doubt" ? 6 : 5, kind === "in_doubt" ? "nothing in doubt" : "nothing in flight");
}

// ---------------------------------------------------------------- search and resolve

async function search(txid) {
  txid = (txid || "").trim();
  $("search-txid").value = txid;
  const out = $("search-result");
  if (!txid) { out.replaceChildren(); return; }
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(txid)) {
    out.replaceChildren(el("p", { class: "error", text: "a txid is 1-128 characters of A-Z a-z 0-9 . _ : -" }));
    return;
  }
  const r = await api("GET", txPath(txid));
  if (r.status === 404 && r.json && r.json.outcome === "aborted") {
    out.replaceChildren(el("p", { "data-search": "not_found" },
      el("span", { class: "mono", text: txid }),
      " — no record here: under presumed abort it did not commit and never will. A participant still holding it prepared aborts when it asks; " +
      "if the decision log was lost, see `commitctl resolve TXID --force` in docs/operations.md."));
    return;
  }
  if (!r.ok) {
    out.replaceChildren(el("p", { class: "error", text: r.message }));
    return;
  }
  const tx = r.json;
  const tl = tx.timeline || {};
  const created = tl.created_ms || tl.started_ms;
  const times = [["created", created], ["decided", tl.decided_ms], ["finished", tl.finished_ms]]
    .filter(([, v]) => v).map(([k, v]) => `${k} ${new Date(v).toLocaleString()}`).join(" · ");
  const dl = el("dl", { class: "summary" });
  summary(dl, [["txid", tx.txid, "txid"], ["outcome", tx.outcome + (tx.heuristic ? " (heuristic)" : ""), "outcome"],
               ["state", tx.state, "state"], ["protocol", tx.protocol, "protocol"], ["age", formatAge(tx.age_ms), "age"]]);
  const rows = (tx.branches || []).map((b) => el("tr", { "data-branch": b.participant },
    el("td", { text: b.participant }), el("td", { text: b.state }),
    el("td", { class: "num", text: b.attempts !== undefined ? b.attempts : "—" }),
    el("td", { class: "mono", text: b.last_error || "" })));
  const table = el("table", {}, el("thead", {}, el("tr", {}, ...["participant", "state", "attempts", "last error"].map((h) => el("th", { text: h })))),
                   el("tbody", {}, ...rows));
  out.replaceChildren(el("div", { "data-search": "found" }, dl,
    tx.reason ? el("p", {}, "reason: ", el("span", { class: "mono", text: tx.reason })) : null,
    el("p", { class: "muted", text: times }), table,
    el("p", {}, settleActions(tx, r))));
}

// Opens the confirmation dialog; `action` runs if the operator confirms.
function askConfirmation(title, text, yes, action) {
  state.pendingAction = action;
  state.forceOffered = null;
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = yes;
  $("confirm-yes").disabled = false;
  $("confirm-no").textContent = "Cancel";
  $("confirm-note").hidden = true;
  $("confirm").hidden = false;
  $("confirm-yes").focus();
}

// Closes the confirmation dialog; returns what it would have done on "yes".
function closeConfirmation() {
  const action = state.pendingAction;
  state.pendingAction = null;
  state.forceOffered = null;
  $("confirm").hidden = true;
  return action;
}

// The dialog says what it offered and why that no longer applies, and offers only to close.
function withdrawConfirmation(offered, reason) {
  state.pendingAction = null;
  state.forceOffered = null;
  $("confirm-text").textContent = offered;
  $("confirm-yes").disabled = true;
  $("confirm-no").textContent = "Close";
  $("confirm-note").textContent = reason;
  $("confirm-note").hidden = false;
  $("confirm-no").focus();
}

function askResolve(txid, outcome) {
  askConfirmation("Resolve a transaction",
    `Deliver the recorded decision of ${txid} (${outcome}) to every participant that has not acknowledged it, now, ` +
    "instead of at the next retry (POST /v1/admin/retry-now, as commitctl resolve does). " +
    "This redelivers every pending decision; it never changes a decision.",
    "Resolve", () => resolve(txid));
}

function askClose(txid, outcome) {
  askConfirmation("Close a contradicted transaction",
    `${txid} was decided ${outcome}, and a participant answered that it had done the other outcome: the data ` +
    "disagrees, and no delivery can change that (the search shows each participant's state). Reconcile the data " +
    `by hand first (e.g. a compensating transaction). Closing marks ${txid} finished and the coordinator stops ` +
    `tracking it (POST ${closePath(txid)}, as commitctl close ${txid} --yes does).`,
    "Close", () => closeContradicted(txid));
}

function askForce(txid, outcome) {
  askConfirmation(`Force ${outcome}: a heuristic decision`,
    `${txid} is in doubt: a participant no longer knows it, so the coordinator cannot learn whether it committed, ` +
    `and decides nothing. Forcing ${outcome} is a heuristic decision you take on your own knowledge: check every ` +
    `participant's database first (did each apply ${txid}, or none?). The ${outcome} is recorded as heuristic and ` +
    "delivered to every participant; one that forgot the transaction cannot check it, so a wrong decision gives no " +
    `signal afterwards (POST ${forcePath(txid)}, as commitctl resolve ${txid} --force ${outcome} --yes does).`,
    `Force ${outcome}`, () => force(txid, outcome));
  state.forceOffered = { txid, outcome };
  recheckOfferedForce();
}

// Withdraws the force the dialog offers once the transaction is settled,
// for good: should it come back in doubt, the operator opens the dialog anew.
async function recheckOfferedForce() {
  const offered = state.forceOffered;
  if (!offered) return;
  const { txid, outcome } = offered;
  const reason = forceWithdrawal(txid, await api("GET", txPath(txid)));
  if (reason && state.forceOffered === offered) {
    withdrawConfirmation(`This dialog offered to force ${outcome} of ${txid} while it was in doubt.`, reason);
  }
}

const NO_LONGER_APPLIES = " This force no longer applies.";

// Why a force of txid no longer applies, from its record as GET txPath(txid)
// answered; null while it is undecided in doubt, and while the answer says
// nothing sure (the coordinator's answer to the force then decides).
function forceWithdrawal(txid, r) {
  const tx = (r.ok && r.json) || {};
  if (r.status === 404) {
    return `${txid} is no longer in doubt: this coordinator no longer holds it (${r.message}).` + NO_LONGER_APPLIES;
  }
  if (Object.values(DECIDED).includes(tx.outcome)) {
    return `${txid} was settled meanwhile: ${tx.outcome}${tx.heuristic ? " (heuristic)" : ""}.` + NO_LONGER_APPLIES;
  }
  if (tx.outcome === "pending" && !tx.in_doubt) return `${txid} is no longer in doubt (now ${tx.state}).` + NO_LONGER_APPLIES;
  return null;
}

function setResolveStatus(text, bad) {
  const p = $("resolve-status");
  p.hidden = !text;
  p.textContent = text || "";
  p.className = "status" + (bad ? " bad" : "");
}

async function resolve(txid) {
  setResolveStatus(`resolving ${txid}…`);
  const r = await api("POST", "/v1/admin/retry-now", {});
  if (!r.ok) {
    setResolveStatus(`resolve ${txid}: ${r.message}`, true);
    return;
  }
  await waitUntilSettled(txid);
}

async function force(txid, outcome) {
  setResolveStatus(`forcing ${outcome} of ${txid}…`);
  const answer = forceAnswer(txid, outcome, await api("POST", forcePath(txid), { outcome, reason: FORCE_REASON }));
  setResolveStatus(answer.text, !answer.stands);
  if (answer.stands) await waitUntilSettled(txid);
}

async function closeContradicted(txid) {
  setResolveStatus(`closing ${txid}…`);
  const r = await api("POST", closePath(txid), {});
  if (r.status === 200 && r.json && r.json.txid === txid) {
    setResolveStatus(`closed: ${txid} is marked finished`);
  } else {
    setResolveStatus(`close ${txid}: ${r.ok ? `answer not understood (HTTP ${r.status})` : r.message}`, true);
  }
  await refresh();
  if ($("search-txid").value.trim() === txid) await search(txid);
}

const DECIDED = { commit: "committed", abort: "aborted" };

// The force's answer in words, and whether the decision now stands as asked.
// Fail closed: only a well-formed 200 stands.
function forceAnswer(txid, outcome, r) {
  const body = r.json || {};
  const asked = r.status === 200 && body.txid === txid && body.outcome === DECIDED[outcome];
  if (asked && body.forced === true && body.heuristic === true) {
    return { stands: true, text: `forced: ${outcome} of ${txid} recorded as heuristic; delivering it…` };
  }
  if (asked && body.forced === false) {
    return { stands: true, text: `${txid} was already decided ${body.outcome}: nothing forced; delivering it…` };
  }
  const lookUp = "; look the transaction up before trying again";
  if (r.ok) return { stands: false, text: `force ${outcome} of ${txid}: answer not understood (HTTP ${r.status})${lookUp}` };
  if (r.status === 0) return { stands: false, text: `force ${outcome} of ${txid}: no answer, recorded or not (${r.message})${lookUp}` };
  if (r.status < 500) return { stands: false, text: `force ${outcome} of ${txid} refused: ${r.message}` };
  return { stands: false, text: `force ${outcome} of ${txid} not recorded: ${r.message}${lookUp}` };
}

// Waits up to RESOLVE_WAIT_MS for every participant to acknowledge txid's decision, and says how it went.
async function waitUntilSettled(txid) {
  const deadline = Date.now() + RESOLVE_WAIT_MS;
  let tx = null;
  while (Date.now() < deadline) {
    const t = await api("GET", txPath(txid));
    if (t.ok) tx = t.json;
    if (tx && tx.state === "finished") break;
    await new Promise((done) => setTimeout(done, 500));
  }
  if (tx && tx.state === "finished") {
    setResolveStatus(`${txid} settled: ${tx.outcome}${tx.heuristic ? " (heuristic)" : ""}, acknowledged by every participant`);
  } else {
    const errors = tx ? (tx.branches || []).filter((b) => b.last_error).map((b) => `${b.participant}: ${b.last_error}`) : [];
    setResolveStatus(`${txid} is still ${tx ? tx.state : "unknown"} after ${RESOLVE_WAIT_MS / 1000} s` +
                     (errors.length ? ` (${errors.join("; ")})` : "") + "; check that its participants are up", true);
  }
  await refresh();
  if ($("search-txid").value.trim() === txid) await search(txid);
}

// ---------------------------------------------------------------- access

// Whether the token may use the admin routes: an empty force request is
// refused after the access check (400) without changing anything, and with
// 403 before it.
async function checkAdmin() {
  const r = await api("POST", "/v1/admin/transactions/-/force", "{}");
  if (r.status === 400) state.admin = true;
  else if (r.status === 401 || r.status === 403) state.admin = false;
  else state.admin = null;  // unknown now (e.g. stopping): ask again next time
  $("access").textContent = !state.token ? "no token" + (state.admin ? " (auth is off)" : "")
                          : state.admin ? "token: admin" : state.admin === false ? "token: read-only" : "token: ?";
}

// ---------------------------------------------------------------- refresh loop

async function refresh() {
  if (state.refreshing) return;
  state.refreshing = true;
  try {
    if (state.admin === null) await checkAdmin();
    const [cluster, participants, metrics, inDoubt, pending] = await Promise.all([
      api("GET", "/v1/cluster"), api("GET", "/v1/participants"), api("GET", "/metrics"),
      api("GET", "/v1/transactions?state=in_doubt&limit=100"), api("GET", "/v1/transactions?state=pending&limit=100")]);
    const unauthorized = [cluster, participants, metrics, inDoubt, pending].some((r) => r.status === 401);
    const unreachable = cluster.status === 0;
    const banner = $("banner");
    banner.hidden = !(unauthorized || unreachable);
    banner.textContent = unreachable ? cluster.message
                       : unauthorized ? (state.token ? "The token was refused (401)." : "This coordinator needs a token: enter it above.") : "";
    renderGroup(cluster);
    const before = state.samples.length ? sampleAgo(RATE_WINDOW_S - POLL_MS / 1000) : null;
    const m = renderRates(metrics);
    renderParticipants(participants, m, before ? before.m : null);
    await Promise.all([renderTransactions(inDoubt, "in_doubt"), renderTransactions(pending, "pending")]);
    await recheckOfferedForce();
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
  } finally {
    state.refreshing = false;
  }
}

function start() {
  $("token").value = state.token;
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token); else sessionStorage.removeItem(TOKEN_KEY);
    state.admin = null;
    state.samples = [];
    refresh();
  });
  $("forget").addEventListener("click", () => {
    state.token = "";
    $("token").value = "";
    sessionStorage.removeItem(TOKEN_KEY);
    state.admin = null;
    refresh();
  });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search($("search-txid").value);
  });
  $("confirm-no").addEventListener("click", closeConfirmation);
  $("confirm-yes").addEventListener("click", () => {
    const action = closeConfirmation();
    if (action) action();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("confirm").hidden) $("confirm-no").click();
  });
  refresh();
  setInterval(refresh, POLL_MS);
}

start();
