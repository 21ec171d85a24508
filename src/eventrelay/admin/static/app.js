// eventrelay Event Delivery page: plain JS, no framework, no build step.
// Every value from the API is inserted as text (textContent), never as HTML: events are user data.
"use strict";

const TOKEN_KEY = "eventrelay.adminToken";
const REFRESH_MS = 5000;
const DELIVERED_SAMPLES = 2;  // recent successful deliveries shown beside the failures (Segment shows both)
// view: "delivery" | "settings" (tabs of the selected destination); creating: the New destination form is open.
const state = { range: "1h", selected: null, busy: false, timer: null, view: "delivery", creating: false };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const given = params.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);  // drop it from the address bar
  }
}

class Unauthorized extends Error {}

// An API refusal: the message, and for a 422 the wrong fields ([{field, message}]).
class ApiError extends Error {
  constructor(message, status, errors) { super(message); this.status = status; this.errors = errors || []; }
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  opts.headers = Object.assign({ Authorization: "Bearer " + token(), Accept: "application/json" }, opts.headers);
  const response = await fetch(path, opts);
  if (response.status === 401) throw new Unauthorized("The admin token was refused.");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    throw new ApiError(error.message || "HTTP " + response.status, response.status, error.errors);
  }
  return body;
}

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  state.timer = null;
  $("app").hidden = true;
  $("login").hidden = false;
  if (message) $("login-message").textContent = message + " Enter the admin token again.";
  $("token-input").focus();
}

function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  for (const b of document.querySelectorAll("#ranges button")) {
    b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
  }
  refresh();
  if (!state.timer) state.timer = setInterval(refresh, REFRESH_MS);
}

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

function fmtMs(v) {
  if (v === null || v === undefined) return "–";
  return v < 1000 ? v.toFixed(v < 10 ? 1 : 0) + " ms" : (v / 1000).toFixed(2) + " s";
}

function fmtTime(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "–";
}

function pretty(value) {
  if (value === null || value === undefined) return "(not kept)";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// Lambda's Python runtime ends each traceback line with \r (one log record, several lines): show them as lines.
function logLines(text) { return String(text).replace(/\r\n?/g, "\n"); }

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
}

function destinationPath(name, tail) { return "/api/v1/destinations/" + encodeURIComponent(name) + tail; }

function cell(text, cls) { return el("td", cls ? { class: cls } : {}, text); }

async function refresh() {
  if (state.busy || !token()) return;
  state.busy = true;
  try {
    const data = await api("/api/v1/destinations?range=" + encodeURIComponent(state.range));
    renderDestinations(data.destinations);
    if (state.selected && !state.creating && state.view === "delivery") await renderDetail(state.selected);
    setStatus("Updated " + new Date().toLocaleTimeString() + " · refreshes every " + REFRESH_MS / 1000 + " s");
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else setStatus("Could not load: " + err.message, true);
  } finally {
    state.busy = false;
  }
}

function select(name) {
  const changed = state.selected !== name || state.creating;
  state.selected = name;
  state.creating = false;
  showView(state.view, changed);
  refresh();
}

// Show the Event Delivery or the Settings tab of the selected destination (reload = read its settings again).
function showView(view, reload) {
  state.view = view;
  $("views").hidden = state.creating;
  $("detail-title").textContent = state.creating ? "New destination" : "Destination";
  if (state.creating) $("detail-name").textContent = "";
  for (const [tab, panel, name] of [["tab-delivery", "view-delivery", "delivery"], ["tab-settings", "view-settings", "settings"]]) {
    $(tab).setAttribute("aria-selected", String(view === name));
    $(panel).hidden = view !== name;
  }
  if (view === "settings" && reload) showSettings(state.creating ? null : state.selected);
}

function renderDestinations(list) {
  const body = $("destinations").querySelector("tbody");
  body.replaceChildren();
  $("no-destinations").hidden = list.length > 0;
  if (!state.creating && !list.some((d) => d.name === state.selected)) {
    state.selected = list.length ? list[0].name : null;
    if (state.selected && state.view === "settings") showSettings(state.selected);
  }
  for (const d of list) {
    const row = el("tr", { "data-destination": d.name, onclick: () => select(d.name) },
      cell(d.name), cell(d.function || ""),
      cell(d.counts.delivered, "num delivered"), cell(d.counts.failed, "num failed"),
      cell(d.counts.retrying, "num retrying"), cell(d.counts.discarded, "num discarded"),
      cell(d.counts.filtered, "num filtered"),
      cell(fmtMs(d.latency_ms.p50), "num"), cell(fmtMs(d.latency_ms.p95), "num"), cell(fmtMs(d.latency_ms.p99), "num"),
      cell(d.queue_depth, "num"));
    if (d.name === state.selected && !state.creating) row.className = "selected";
    body.append(row);
  }
  $("detail").hidden = !state.selected && !state.creating;
  if (!state.creating) $("detail-name").textContent = state.selected || "";
}

async function renderDetail(name) {
  const q = "?destination=" + encodeURIComponent(name) + "&limit=50";
  const [stats, samples, delivered, failed, discarded, retrying] = await Promise.all([
    api(destinationPath(name, "/stats?range=" + encodeURIComponent(state.range))),
    api(destinationPath(name, "/samples?limit=3")),
    api(destinationPath(name, "/samples?category=delivered&limit=" + DELIVERED_SAMPLES)),
    api("/api/v1/deliveries" + q + "&status=failed"),
    api("/api/v1/deliveries" + q + "&status=discarded"),
    api("/api/v1/deliveries" + q + "&status=retrying"),
  ]);
  if (name !== state.selected || state.view !== "delivery") return;  // the person moved on meanwhile
  renderChart(stats.series);
  renderLatency(stats);
  renderErrors(stats.errors);
  renderSamples(delivered.samples.concat(samples.samples).sort((a, b) => b.at - a.at));
  renderRetrying(name, retrying.deliveries);
  renderFailed(name, failed.deliveries.concat(discarded.deliveries));
}

function events(n) { return n + " event" + (n === 1 ? "" : "s"); }

function renderLatency(stats) {
  const all = stats.latency_ms;
  const first = stats.first_attempt_latency_ms;
  const parts = ["Receipt to delivery, retries included (" + events(all.count) + " delivered): P50 " +
    fmtMs(all.p50) + " · P95 " + fmtMs(all.p95) + " · P99 " + fmtMs(all.p99)];
  if (first) {
    parts.push("Delivered by their first attempt (" + events(first.count) + "): P50 " + fmtMs(first.p50) +
      " · P95 " + fmtMs(first.p95) + " · P99 " + fmtMs(first.p99));
  }
  $("latency").replaceChildren(...parts.map((p) => el("span", { class: "latency-line" }, p)));
}

function renderErrors(errors) {
  const body = $("errors").querySelector("tbody");
  body.replaceChildren();
  $("no-errors").hidden = errors.length > 0;
  for (const e of errors) {
    body.append(el("tr", { "data-category": e.category },
      cell(e.name, "category"), cell(e.attempts, "num"), cell(e.events, "num"),
      cell(e.description), cell(e.hint, "hint")));
  }
}

function renderSamples(samples) {
  const box = $("samples");
  box.replaceChildren();
  if (!samples.length) { box.append(el("p", {}, "No attempts to show yet.")); return; }
  for (const s of samples) {
    const r = s.response;
    const response = [
      "Status: " + (r.status === null ? "(no answer)" : r.status),
      "Error type: " + (r.error_type || "–"),
      "Message: " + (r.error_message || "–"),
    ];
    if (r.executed_version) response.push("Executed version: " + r.executed_version);
    if (s.batch) {
      // the event travelled in a batch: which one, and what the function answered for it
      response.push("Batch: " + s.batch.id + " (" + s.batch.size + " events, " + s.batch.bytes + " bytes)");
      if (r.body) response.push("Body: " + r.body);
    }
    if (s.warning) response.push("Warning: " + s.warning);
    const ok = s.category === "delivered";
    box.append(el("article", { class: "sample" + (ok ? " ok" : " bad"), "data-category": s.category },
      el("h4", {}, s.category_name + " · " + s.message_id + " · attempt " + s.attempt + " · " + fmtTime(s.at)),
      el("div", { class: "panes" },
        el("div", {}, el("h5", {}, "You sent"), el("pre", { class: "sent" }, pretty(s.you_sent))),
        el("div", {}, el("h5", {}, "Request to destination"), el("pre", { class: "request" }, pretty(s.request))),
        el("div", {}, el("h5", {}, "Response from destination"),
          el("pre", { class: "response" }, response.join("\n")),
          el("h5", {}, "Log tail"), el("pre", { class: "log-tail" }, r.log_tail ? logLines(r.log_tail) : noTail(r))))));
  }
}

function noTail(response) {
  // Only an invoke that reached the function can have a log tail.
  if (response.status === 200) return "(none: set Log Type to Tail in this destination's Settings)";
  return response.status === null ? "(none: no answer arrived)" : "(none: the function did not run)";
}

function renderRetrying(name, rows) {
  const body = $("retrying").querySelector("tbody");
  body.replaceChildren();
  $("no-retrying").hidden = rows.length > 0;
  $("retry-all").disabled = rows.length === 0;
  rows.sort((a, b) => (a.next_attempt_at || 0) - (b.next_attempt_at || 0));
  for (const d of rows) {
    const button = el("button", { type: "button", onclick: () => retryNow(name, [d.message_id]) }, "Retry now");
    body.append(el("tr", { "data-message-id": d.message_id },
      cell(d.message_id), cell(d.error || d.category), cell(d.attempts, "num"),
      cell(fmtTime(d.next_attempt_at), "next-attempt"), el("td", {}, button)));
  }
}

function renderFailed(name, rows) {
  rows.sort((a, b) => b.updated_at - a.updated_at);
  const body = $("failed").querySelector("tbody");
  body.replaceChildren();
  $("no-failed").hidden = rows.length > 0;
  for (const d of rows.slice(0, 50)) {
    const button = el("button", { type: "button", onclick: () => redriveFailed(name, [d.message_id]) }, "Re-drive");
    body.append(el("tr", { "data-message-id": d.message_id },
      cell(d.message_id), cell(d.status), cell(d.error || d.category), cell(d.attempts, "num"),
      cell(fmtTime(d.updated_at)), el("td", {}, button)));
  }
}

// Re-drive: failed/discarded events (the Failed table) or retrying ones (Retry now); says why when none moved.
async function redrive(name, body, resultId) {
  try {
    const result = await post(destinationPath(name, "/redrive"), body);
    const n = result.redriven;
    $(resultId).textContent = n ? "Re-drove " + n + " event" + (n === 1 ? "" : "s") + "." : result.message + ".";
    refresh();
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else $(resultId).textContent = "Re-drive failed: " + err.message;
  }
}

function redriveFailed(name, ids) {
  redrive(name, ids ? { message_ids: ids } : { status: ["failed", "discarded"] }, "redrive-result");
}

function retryNow(name, ids) {
  redrive(name, ids ? { message_ids: ids } : { status: ["retrying"] }, "retry-result");
}

function start() {
  takeTokenFromFragment();
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    $("token-input").value = "";
    showApp();
  });
  for (const b of document.querySelectorAll("#ranges button")) {
    b.addEventListener("click", () => { state.range = b.dataset.range; showApp(); });
  }
  $("redrive-all").addEventListener("click", () => { if (state.selected) redriveFailed(state.selected, null); });
  $("retry-all").addEventListener("click", () => { if (state.selected) retryNow(state.selected, null); });
  $("tab-delivery").addEventListener("click", () => { showView("delivery", false); refresh(); });
  $("tab-settings").addEventListener("click", () => showView("settings", true));
  $("new-destination").addEventListener("click", () => { state.creating = true; showView("settings", true); $("detail").hidden = false; });
  window.addEventListener("hashchange", () => { takeTokenFromFragment(); if (token()) showApp(); });
  if (token()) showApp(); else showLogin();
}

document.addEventListener("DOMContentLoaded", start);
