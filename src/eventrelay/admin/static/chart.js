// The attempts chart of the Event Delivery page: stacked bars (delivered, failed) per time bucket,
// with a count axis on the left and a time axis below. Plain SVG; every label is text, never markup.
"use strict";

const CHART = { width: 1000, height: 200, left: 44, right: 8, top: 10, bottom: 28 };  // the viewBox
const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A round top for the count axis: 1, 2, 5, 10, 20, 50, ... at or above max.
function niceMax(max) {
  let step = 1;
  while (true) {
    for (const m of [1, 2, 5]) if (m * step >= max) return m * step;
    step *= 10;
  }
}

function clockLabel(epoch, spanSeconds) {
  const d = new Date(epoch * 1000);
  if (spanSeconds > 86400) return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " +
    d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderChart(series) {
  const svg = $("chart");
  svg.replaceChildren();
  const buckets = series.buckets;
  const c = CHART;
  const plotW = c.width - c.left - c.right;
  const plotH = c.height - c.top - c.bottom;
  const totals = buckets.map((b) => b.delivered + Object.values(b.errors).reduce((a, n) => a + n, 0));
  const top = niceMax(Math.max(1, ...totals));
  const y = (n) => c.top + plotH - (n / top) * plotH;

  // count axis: 0, half, top, with grid lines
  for (const n of [0, top / 2, top]) {
    if (!Number.isInteger(n)) continue;
    svg.append(svgEl("line", { class: "grid", x1: c.left, x2: c.width - c.right, y1: y(n), y2: y(n) }));
    svg.append(svgEl("text", { class: "axis", x: c.left - 6, y: y(n) + 4, "text-anchor": "end" }, String(n)));
  }
  svg.append(svgEl("text", { class: "axis-title", x: 10, y: c.top + plotH / 2, "text-anchor": "middle",
    transform: "rotate(-90 10 " + (c.top + plotH / 2) + ")" }, "attempts"));

  // bars
  const w = plotW / buckets.length;
  buckets.forEach((b, i) => {
    const bad = totals[i] - b.delivered;
    const x = c.left + i * w + 0.5;
    for (const [cls, n, base] of [["ok", b.delivered, 0], ["bad", bad, b.delivered]]) {
      if (n <= 0) continue;
      const r = svgEl("rect", { class: cls, x: x, y: y(base + n), width: Math.max(0.5, w - 1), height: y(base) - y(base + n) });
      r.append(svgEl("title", {}, clockLabel(b.start, 0) + ": " + b.delivered + " delivered, " + bad + " failed"));
      svg.append(r);
    }
  });

  // time axis: the start, the middle and the end of the range
  if (buckets.length) {
    const start = buckets[0].start;
    const end = buckets[buckets.length - 1].start + series.bucket_seconds;
    const span = end - start;
    for (const [frac, anchor] of [[0, "start"], [0.5, "middle"], [1, "end"]]) {
      const x = c.left + frac * plotW;
      svg.append(svgEl("line", { class: "tick", x1: x, x2: x, y1: c.top + plotH, y2: c.top + plotH + 4 }));
      svg.append(svgEl("text", { class: "axis time", x: x, y: c.height - 8, "text-anchor": anchor },
        clockLabel(start + frac * span, span)));
    }
  }
  $("chart-scale").textContent = "(attempts per " + fmtSeconds(series.bucket_seconds) + "; highest bar " +
    Math.max(0, ...totals) + ")";
}

function fmtSeconds(s) {
  if (s >= 3600 && s % 3600 === 0) return s / 3600 + " h";
  if (s >= 60 && Math.round(s) % 60 === 0) return Math.round(s) / 60 + " min";
  return Math.round(s) + " s";
}
