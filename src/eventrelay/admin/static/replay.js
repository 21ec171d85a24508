// eventrelay Event Delivery page: the archive's size and the replay form of the selected destination.
// Self-contained beside app.js: it reads the admin token app.js keeps in sessionStorage and follows the
// destination app.js shows in #detail-name. Values from the API are inserted as text, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "eventrelay.adminToken";
  const POLL_MS = 1000;
  const ARCHIVE_REFRESH_MS = 5000; // as the page's own refresh
  const TYPES = ["", "track", "identify", "page", "screen", "group", "alias"];
  let destination = null;
  let polling = null;

  function node(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : String(c));
    return n;
  }

  async function call(path, body) {
    const options = { headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY), Accept: "application/json" } };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = answer.error || {};
      const field = error.errors && error.errors[0] ? error.errors[0].field + ": " + error.errors[0].message : null;
      throw new Error(field || error.message || "HTTP " + response.status);
    }
    return answer;
  }

  function when(epoch) { return epoch ? new Date(epoch * 1000).toLocaleString() : "–"; }

  function build(root) {
    const typeSelect = node("select", { id: "replay-type" }, ...TYPES.map((t) => node("option", { value: t }, t || "any type")));
    root.append(
      node("h3", {}, "Replay"),
      node("p", { id: "archive-size", class: "hint" }, "Archive: …"),
      node("form", { id: "replay-form", onsubmit: (e) => { e.preventDefault(); submit(false); } },
        node("label", { for: "replay-since" }, "Since "), node("input", { id: "replay-since", value: "24h", required: "" }),
        node("label", { for: "replay-until" }, " Until "), node("input", { id: "replay-until", placeholder: "now" }),
        node("label", { for: "replay-type" }, " Type "), typeSelect,
        node("label", { for: "replay-event" }, " Event "), node("input", { id: "replay-event", placeholder: "any" }),
        node("label", { for: "replay-where" }, " Where "),
        node("input", { id: "replay-where", placeholder: 'properties.plan = "pro"', size: "30" }),
        " ", node("button", { type: "button", id: "replay-dry-run", onclick: () => submit(true) }, "Dry run"),
        " ", node("button", { type: "submit", id: "replay-start" }, "Replay")),
      node("p", { id: "replay-result", role: "status" }),
      node("div", { id: "replay-running", hidden: "" },
        node("progress", { id: "replay-progress", max: "1", value: "0" }),
        " ", node("span", { id: "replay-counts" }),
        " ", node("button", { type: "button", id: "replay-cancel", onclick: cancel }, "Cancel")),
    );
  }

  function request(dryRun) {
    const body = { since: document.getElementById("replay-since").value.trim() };
    for (const [key, id] of [["until", "replay-until"], ["type", "replay-type"], ["event", "replay-event"], ["where", "replay-where"]]) {
      const value = document.getElementById(id).value.trim();
      if (value) body[key] = value;
    }
    if (dryRun) body.dry_run = true;
    return body;
  }

  async function submit(dryRun) {
    const result = document.getElementById("replay-result");
    result.className = "";
    try {
      const answer = await call("/api/v1/destinations/" + encodeURIComponent(destination) + "/replays", request(dryRun));
      if (dryRun) {
        const plan = answer.dry_run;
        let text = plan.matched + " event" + (plan.matched === 1 ? "" : "s") + " would be replayed";
        if (plan.matched) text += ", received " + when(plan.first_at) + " to " + when(plan.last_at);
        if (plan.note) text += ". Note: " + plan.note;
        result.textContent = text + ".";
      } else {
        result.textContent = "Replay " + answer.replay.id + " started.";
        show(answer.replay);
      }
    } catch (err) {
      result.className = "error";
      result.textContent = "Could not replay: " + err.message;
    }
  }

  function show(replay) {
    const running = document.getElementById("replay-running");
    running.hidden = false;
    running.dataset.replay = replay.id;
    running.dataset.state = replay.state;
    document.getElementById("replay-progress").value = replay.progress;
    const counts = Object.entries(replay.counts).filter(([, n]) => n).map(([s, n]) => n + " " + s).join(", ");
    document.getElementById("replay-counts").textContent =
      replay.id + ": " + replay.state + " · " + Math.round(replay.progress * 100) + "% of " +
      replay.events_in_window + " events" + (counts ? " · " + counts : "");
    document.getElementById("replay-cancel").hidden = replay.state !== "running";
    clearTimeout(polling);
    if (replay.state === "running") polling = setTimeout(() => follow(replay.id), POLL_MS);
  }

  async function follow(id) {
    if (!destination) return;
    try {
      show(await call("/api/v1/destinations/" + encodeURIComponent(destination) + "/replays/" + encodeURIComponent(id)));
    } catch (err) {
      document.getElementById("replay-counts").textContent = "Could not read the replay: " + err.message;
    }
  }

  async function cancel() {
    const id = document.getElementById("replay-running").dataset.replay;
    try {
      show(await call("/api/v1/destinations/" + encodeURIComponent(destination) + "/replays/" + encodeURIComponent(id) + "/cancel", {}));
    } catch (err) {
      document.getElementById("replay-counts").textContent = "Could not cancel: " + err.message;
    }
  }

  async function selected(name) {
    if (!name || name === destination) return;
    destination = name;
    clearTimeout(polling);
    document.getElementById("replay-running").hidden = true;
    document.getElementById("replay-result").textContent = "";
    await showArchive();
    try {
      const listed = await call("/api/v1/destinations/" + encodeURIComponent(name) + "/replays");
      if (listed.replays.length) show(listed.replays[0]);
    } catch (err) {
      document.getElementById("replay-result").textContent = "Could not list replays: " + err.message;
    }
  }

  // The archive grows with every accepted event: its line is read again as often as the page refreshes.
  async function showArchive() {
    const line = document.getElementById("archive-size");
    try {
      const archive = await call("/api/v1/archive");
      line.textContent = archive.enabled
        ? "Archive: " + archive.events + " events, " + archive.size + ", oldest " + when(archive.oldest) + " (keeps " +
          Math.round(archive.retention_seconds / 3600) + " h or " + Math.round(archive.max_bytes / 1e6) + " MB)"
        : "Archive: off (" + (archive.note || "archive.enabled is false") + ")";
    } catch (err) {
      line.textContent = "Archive: " + err.message;
    }
  }

  function start() {
    const root = document.getElementById("replay");
    const title = document.getElementById("detail-name");
    if (!root || !title) return;
    build(root);
    new MutationObserver(() => selected(title.textContent)).observe(title, { childList: true, characterData: true, subtree: true });
    selected(title.textContent);
    setInterval(() => { if (destination) showArchive(); }, ARCHIVE_REFRESH_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
