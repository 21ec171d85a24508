// eventrelay Event Delivery page: plain JS, no framework, no build step.
// Every value from the API is inserted as text (textContent), never as HTML: events are user data.
"use strict";

const TOKEN_KEY = "eventrelay.adminToken";
const REFRESH_MS = 5000;
const state = { range: "1h", selected: null, busy: false, timer: null };

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

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  opts.headers = Object.assign({ Authorization: "Bearer " + token(), Accept: "application/json" }, opts.headers);
  const response = await fetch(path, opts);
  if (response.status === 401) throw new Unauthorized("The admin token was refused.");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body.error && body.error.message ? body.error.message : "HTTP " + response.status;
    throw new Error(message);
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

function cell(text, cls) { return el("td", cls ? { class: cls } : {}, text); }

async function refresh() {
  if (state.busy || !token()) return;
  state.busy = true;
  try {
    const data = await api("/api/v1/destinations?range=" + encodeURIComponent(state.range));
    renderDestinations(data.destinations);
    if (state.selected) await renderDetail(state.selected);
    setStatus("Updated " + new Date().toLocaleTimeString() + " · refreshes every " + REFRESH_MS / 1000 + " s");
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else setStatus("Could not load: " + err.message, true);
  } finally {
    state.busy = false;
  }
}

function renderDestinations(list) {
  const body = $("destinations").querySelector("tbody");
  body.replaceChildren();
  $("no-destinations").hidden = list.length > 0;
  if (!list.some((d) => d.name === state.selected)) state.selected = list.length ? list[0].name : null;
  for (const d of list) {
    const row = el("tr", { "data-destination": d.name, onclick: () => { state.selected = d.name; refresh(); } },
      cell(d.name), cell(d.function || ""),
      cell(d.counts.delivered, "num delivered"), cell(d.counts.failed, "num failed"),
      cell(d.counts.retrying, "num retrying"), cell(d.counts.discarded, "num discarded"),
      cell(d.counts.filtered, "num filtered"),
      cell(fmtMs(d.latency_ms.p50), "num"), cell(fmtMs(d.latency_ms.p95), "num"), cell(fmtMs(d.latency_ms.p99), "num"),
      cell(d.queue_depth, "num"));
    if (d.name === state.selected) row.className = "selected";
    body.append(row);
  }
  $("detail").hidden = !state.selected;
}

async function renderDetail(name) {
  const base = "/api/v1/destinations/" + encodeURIComponent(name);
  const q = "?destination=" + encodeURIComponent(name) + "&limit=50";
  const [stats, samples, failed, discarded] = await Promise.all([
    api(base + "/stats?range=" + encodeURIComponent(state.range)),
    api(base + "/samples?limit=3"),
    api("/api/v1/deliveries" + q + "&status=failed"),
    api("/api/v1/deliveries" + q + "&status=discarded"),
  ]);
  $("detail-name").textContent = name;
  renderChart(stats.series);
  renderErrors(stats.errors);
  renderSamples(samples.samples);
  renderFailed(name, failed.deliveries.concat(discarded.deliveries));
}

function renderChart(series) {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const buckets = series.buckets;
  const totals = buckets.map((b) => b.delivered + Object.values(b.errors).reduce((a, n) => a + n, 0));
  const max = Math.max(1, ...totals);
  const w = 600 / buckets.length;
  buckets.forEach((b, i) => {
    const bad = totals[i] - b.delivered;
    const hOk = (b.delivered / max) * 150;
    const hBad = (bad / max) * 150;
    for (const [cls, h, y] of [["ok", hOk, 160 - hOk], ["bad", hBad, 160 - hOk - hBad]]) {
      if (h <= 0) continue;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", cls);
      r.setAttribute("x", String(i * w + 0.5));
      r.setAttribute("y", String(y));
      r.setAttribute("width", String(Math.max(0.5, w - 1)));
      r.setAttribute("height", String(h));
      const title = document.createElementNS(ns, "title");
      title.textContent = new Date(b.start * 1000).toLocaleTimeString() + ": " + b.delivered + " delivered, " + bad + " failed";
      r.append(title);
      svg.append(r);
    }
  });
  $("chart-scale").textContent = "(max " + max + " attempts per " + Math.round(series.bucket_seconds) + " s)";
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
  if (!samples.length) { box.append(el("p", {}, "No failed attempts to show.")); return; }
  for (const s of samples) {
    const r = s.response;
    const response = [
      "Status: " + (r.status === null ? "(no answer)" : r.status),
      "Error type: " + (r.error_type || "–"),
      "Message: " + (r.error_message || "–"),
    ];
    if (r.executed_version) response.push("Executed version: " + r.executed_version);
    box.append(el("article", { class: "sample", "data-category": s.category },
      el("h4", {}, s.category_name + " · " + s.message_id + " · attempt " + s.attempt + " · " + fmtTime(s.at)),
      el("div", { class: "panes" },
        el("div", {}, el("h5", {}, "You sent"), el("pre", { class: "sent" }, pretty(s.you_sent))),
        el("div", {}, el("h5", {}, "Request to destination"), el("pre", { class: "request" }, pretty(s.request))),
        el("div", {}, el("h5", {}, "Response from destination"),
          el("pre", { class: "response" }, response.join("\n")),
          el("h5", {}, "Log tail"), el("pre", { class: "log-tail" }, r.log_tail || noTail(r))))));
  }
}

function noTail(response) {
  // Only an invoke that reached the function can have a log tail.
  if (response.status === 200) return "(none: set log_type: Tail on the destination)";
  return response.status === null ? "(none: no answer arrived)" : "(none: the function did not run)";
}

function renderFailed(name, rows) {
  rows.sort((a, b) => b.updated_at - a.updated_at);
  const body = $("failed").querySelector("tbody");
  body.replaceChildren();
  $("no-failed").hidden = rows.length > 0;
  for (const d of rows.slice(0, 50)) {
    const button = el("button", { type: "button", onclick: () => redrive(name, [d.message_id]) }, "Re-drive");
    body.append(el("tr", { "data-message-id": d.message_id },
      cell(d.message_id), cell(d.status), cell(d.error || d.category), cell(d.attempts, "num"),
      cell(fmtTime(d.updated_at)), el("td", {}, button)));
  }
}

async function redrive(name, ids) {
  const body = ids ? { message_ids: ids } : {};
  try {
    const result = await api("/api/v1/destinations/" + encodeURIComponent(name) + "/redrive", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("redrive-result").textContent = "Re-drove " + result.redriven + " event" + (result.redriven === 1 ? "" : "s") + ".";
    refresh();
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else $("redrive-result").textContent = "Re-drive failed: " + err.message;
  }
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
  $("redrive-all").addEventListener("click", () => { if (state.selected) redrive(state.selected, null); });
  window.addEventListener("hashchange", () => { takeTokenFromFragment(); if (token()) showApp(); });
  if (token()) showApp(); else showLogin();
}

document.addEventListener("DOMContentLoaded", start);
