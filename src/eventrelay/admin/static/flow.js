// eventrelay Event Delivery page, flow control: the adaptive in-flight limit of each function and
// the per-user lanes that wait behind a retrying event. A script of its own beside app.js: it reads
// the same admin token (sessionStorage) and the same /api/v1/destinations answer, and only renders
// into #flow. Every API value is inserted as text, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "eventrelay.adminToken";
  const REFRESH_MS = 5000;

  function text(tag, value, cls) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    node.textContent = value === null || value === undefined ? "–" : String(value);
    return node;
  }

  function row(...cells) {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }

  function until(epoch) {
    if (!epoch) return "–";
    const left = epoch - Date.now() / 1000;
    return left > 0 ? left.toFixed(1) + " s" : "–";
  }

  function render(destinations) {
    const limits = document.querySelector("#flow-limits tbody");
    const lanes = document.querySelector("#flow-lanes tbody");
    if (!limits || !lanes) return;
    limits.replaceChildren();
    lanes.replaceChildren();
    let blocked = 0;
    for (const d of destinations) {
      for (const f of d.flow || []) {
        limits.append(row(text("td", d.name), text("td", f["function"]), text("td", f.limit, "num limit"),
          text("td", f.in_flight, "num"), text("td", f.waiting, "num"), text("td", f.configured, "num"),
          text("td", f.reserved_concurrency, "num"), text("td", until(f.retry_after_until), "num")));
      }
      for (const lane of (d.lanes && d.lanes.blocked) || []) {
        blocked += 1;
        lanes.append(row(text("td", d.name), text("td", lane.key + " " + lane.user), text("td", lane.events, "num lane-events"),
          text("td", lane.head_category), text("td", lane.head_attempts, "num"),
          text("td", lane.next_attempt_at ? new Date(lane.next_attempt_at * 1000).toLocaleTimeString() : null)));
      }
    }
    document.getElementById("flow").hidden = limits.children.length === 0 && blocked === 0;
    document.getElementById("no-blocked-lanes").hidden = blocked > 0;
  }

  async function refresh() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token || document.getElementById("app").hidden) return;
    try {
      const response = await fetch("/api/v1/destinations?range=10m", {
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      });
      if (response.ok) render((await response.json()).destinations || []);
    } catch (err) {
      // app.js reports connection problems in the status line; nothing to add here
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    refresh();
    setInterval(refresh, REFRESH_MS);
  });
})();
