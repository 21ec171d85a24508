// The Settings view of a destination: a form over the Config API (GET, PUT, POST
// /api/v1/config/destinations), the connection check and the Event Tester. Labels are the setting names
// of Segment's catalog, then eventrelay's own. A change applies live: the next attempt uses it.
"use strict";

const CALL_TYPES = ["track", "identify", "page", "screen", "group", "alias"];
const EXTERNAL_ID_REASON = "Read-only: always the workspace id, so that only your eventrelay can assume the role " +
  "with it (the confused-deputy protection). Put it in the role's trust policy as sts:ExternalId.";

const FQL_HELP = 'FQL: paths (event, properties.plan), = != < > <= >=, and, or, !, ( ), contains(path, "s"), ' +
  'match(path, "glob*"), null for missing.';

// kind: text (default), select, json, list, duration, integer, checkbox, readonly, filters (settings_filters.js).
const SETTINGS_GROUPS = [
  { legend: "Destination", fields: [
    { label: "Name", path: "name", only: "new", help: "Letters, digits, . _ - (up to 64); it cannot change later." },
    { label: "Enabled", path: "enabled", kind: "checkbox", help: "Off: events are still accepted and wait in the queue." },
    { label: "Sources", path: "sources", kind: "list", help: "Comma-separated source names; empty: every source." },
  ] },
  { legend: "Connection", fields: [
    { label: "Lambda", path: "settings.lambda", help: "Function name, name:alias, name:version, or full/partial ARN (required)." },
    { label: "Region", path: "settings.region", help: "AWS region of the function, e.g. us-west-2 (required)." },
    { label: "Role Address", path: "settings.role_address", help: "ARN of the IAM role eventrelay assumes (required)." },
    { label: "External ID", path: "external_id", kind: "readonly", help: EXTERNAL_ID_REASON },
    { label: "Client Context", path: "settings.client_context", kind: "json",
      help: "JSON object sent as X-Amz-Client-Context (handlers see it in context.client_context.custom)." },
    { label: "Log Type", path: "settings.log_type", kind: "select", options: ["None", "Tail"],
      help: "Tail keeps the last 4 KB of the function's log with each attempt." },
    { label: "Invocation Type", path: "settings.invocation_type", kind: "select", options: ["RequestResponse", "Event"],
      help: "RequestResponse waits for the answer (needed for Client Context, Tail, errors); Event is asynchronous." },
    { label: "Endpoint URL", path: "settings.endpoint_url",
      help: "Optional AWS endpoint override (local runtime, LocalStack, VPC endpoint); must be on the allow-list." },
  ] },
  { legend: "Functions per call type", note: "Empty: the call type goes to Lambda.", fields: [
    ...CALL_TYPES.map((t) => ({ label: t, path: "settings.functions." + t, placeholder: "(Lambda)" })),
    { label: "Track events allow-list", path: "settings.functions.events", kind: "list",
      help: "Comma-separated track event names to deliver; empty: every track event." },
  ] },
  { legend: "Destination filters", note: "Applied before each send, in order. An event kept out is counted as " +
      "Filtered, never retried. " + FQL_HELP, fields: [
    { label: "Only send events that match", path: "only",
      help: 'An FQL condition, e.g. type = "track" and event != "Debug"; empty: every event.' },
    { label: "Filters", path: "filters", kind: "filters",
      help: "Each filter: if an event matches the condition (empty: every event), drop it, send a sample of " +
        "such events, or drop or allow only the listed property paths." },
  ] },
  { legend: "Delivery", fields: [
    { label: "Timeout", path: "delivery.timeout", kind: "duration", help: "Per attempt, e.g. 5s." },
    { label: "Retry window", path: "delivery.retry_window", kind: "duration", help: "Retried this long after receipt, e.g. 4h." },
    { label: "Max attempts", path: "delivery.max_attempts", kind: "integer", help: "Attempt cap within the window." },
    { label: "Concurrency", path: "delivery.concurrency", kind: "integer", help: "Attempts in flight at once." },
  ] },
];

const FORM_TYPE = "aws_lambda";  // the destination type this form knows
const form = { name: null, entity: null, fields: [] };  // the destination shown, as the API gave it

// A destination of another type: its settings as the Config API shows them (change them there).
function otherType(entity) {
  return el("div", {}, el("p", { class: "managed-note" }, "This page's form knows " + FORM_TYPE +
    " destinations; change a " + entity.type + " destination through the Config API " +
    "(/api/v1/config/destinations/" + entity.name + ")."), el("pre", {}, JSON.stringify(entity, null, 2)));
}

function fieldId(path) { return "setting-" + path.replace(/[^A-Za-z0-9]/g, "-"); }

function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (o[k] === null || typeof o[k] !== "object") o[k] = {};
    o = o[k];
  }
  if (value === undefined) delete o[keys[keys.length - 1]];
  else o[keys[keys.length - 1]] = value;
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  for (const [unit, n] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    if (seconds >= n && seconds % n === 0) return seconds / n + unit;
  }
  return Math.round(seconds * 1000) + "ms";
}

async function showSettings(name) {
  const panel = $("view-settings");
  panel.replaceChildren(el("p", {}, "Loading settings…"));
  try {
    const entity = name === null ? { type: "aws_lambda", enabled: true, settings: {}, delivery: {} }
      : await api("/api/v1/config/destinations/" + encodeURIComponent(name));
    if (name !== null && (name !== state.selected || state.creating)) return;  // moved on meanwhile
    form.name = name;
    form.entity = entity;
    panel.replaceChildren(entity.type === FORM_TYPE ? buildForm(entity, name === null) : otherType(entity));
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else panel.replaceChildren(el("p", { class: "error" }, "Could not load the settings: " + err.message));
  }
}

function buildForm(entity, isNew) {
  const readOnly = entity.managed_by === "file";
  form.fields = [];
  const body = el("form", { id: "settings-form", novalidate: "", "aria-label": "Destination settings" });
  if (readOnly) {
    const where = entity.config_file ? "the configuration file " + entity.config_file : "the configuration file";
    body.append(el("p", { class: "managed-note", id: "managed-note" },
      "Managed by " + where + ": shown read-only, because what the file defines is changed in the file " +
      "(then restart eventrelay). Destinations created on this page or through the Config API can be changed here."));
  }
  for (const group of SETTINGS_GROUPS) {
    const set = el("fieldset", {}, el("legend", {}, group.legend));
    if (group.note) set.append(el("p", { class: "note" }, group.note));
    for (const f of group.fields) {
      if (f.only === "new" && !isNew) continue;
      set.append(buildField(f, entity, readOnly));
    }
    body.append(set);
  }
  body.append(el("p", { class: "form-error", id: "settings-error", role: "alert", hidden: "" }));
  const actions = el("p", { class: "actions" });
  if (!readOnly) actions.append(el("button", { type: "submit", id: "settings-save" }, isNew ? "Create" : "Save"));
  const check = el("button", { type: "button", id: "settings-check", onclick: testConnection }, "Test connection");
  const send = el("button", { type: "button", id: "settings-send", onclick: sendTestEvent }, "Send test event");
  const callType = el("select", { id: "test-event-type" }, ...CALL_TYPES.map((t) => el("option", { value: t }, t)));
  if (isNew) { check.disabled = true; send.disabled = true; callType.disabled = true; }
  actions.append(check, " ", el("label", { for: "test-event-type" }, "Test event type"), " ", callType, " ", send,
    " ", el("span", { id: "settings-result", role: "status" }));
  body.append(actions, el("div", { id: "check-result" }), el("div", { id: "test-result" }));
  body.addEventListener("submit", (ev) => { ev.preventDefault(); save(isNew); });
  return body;
}

function buildField(f, entity, readOnly) {
  const id = fieldId(f.path);
  const value = getPath(entity, f.path);
  const described = [id + "-help", id + "-error"].join(" ");
  let input;
  if (f.kind === "select") {
    input = el("select", { id: id, "aria-describedby": described },
      ...f.options.map((o) => el("option", { value: o }, o)));
    input.value = value || f.options[0];
  } else if (f.kind === "json") {
    input = el("textarea", { id: id, rows: "3", spellcheck: "false", "aria-describedby": described });
    input.value = value && Object.keys(value).length ? JSON.stringify(value, null, 2) : "";
  } else if (f.kind === "filters") {
    input = FilterEditor.build(id, value, readOnly, id + "-label", described);
  } else if (f.kind === "checkbox") {
    input = el("input", { id: id, type: "checkbox", "aria-describedby": described });
    input.checked = value !== false;
  } else {
    input = el("input", { id: id, type: "text", autocomplete: "off", spellcheck: "false", "aria-describedby": described });
    if (f.placeholder) input.placeholder = f.placeholder;
    input.value = shownValue(f, value, entity);
  }
  if (f.kind === "readonly") input.readOnly = true;
  else if (readOnly) input.disabled = true;
  form.fields.push({ spec: f, input: input });
  const label = f.kind === "filters" ? el("span", { class: "label", id: id + "-label" }, f.label)
    : el("label", { for: id }, f.label);
  return el("div", { class: "field" + (f.kind === "checkbox" ? " checkbox" : f.kind === "filters" ? " wide" : ""),
    "data-path": f.path }, label, input,
    el("small", { class: "help", id: id + "-help" }, f.help || ""),
    el("p", { class: "field-error", id: id + "-error", hidden: "" }));
}

function shownValue(f, value, entity) {
  if (f.kind === "readonly") return value || "(each event's source id: no workspace id is configured)";
  if (f.kind === "list") return Array.isArray(value) ? value.join(", ") : "";
  if (f.kind === "duration") return fmtDuration(value);
  return value === null || value === undefined ? "" : String(value);
}

// The entity to send: what the API showed, with each editable field as the person left it.
function readForm() {
  const entity = JSON.parse(JSON.stringify(form.entity));
  for (const key of ["managed_by", "config_file", "external_id"]) delete entity[key];
  const problems = [];
  for (const { spec, input } of form.fields) {
    if (spec.kind === "readonly") continue;
    if (spec.kind === "filters") { entity.filters = FilterEditor.read(input, problems); continue; }
    const text = input.type === "checkbox" ? "" : input.value.trim();
    let value;
    if (spec.kind === "checkbox") value = input.checked;
    else if (spec.kind === "select") value = input.value;
    else if (spec.kind === "list") value = text ? text.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
    else if (spec.kind === "integer") value = text === "" ? undefined : (/^\d+$/.test(text) ? Number(text) : text);
    else if (spec.kind === "json") {
      try { value = text ? JSON.parse(text) : {}; } catch (err) { problems.push({ field: spec.path, message: "is not valid JSON: " + err.message }); }
    } else value = text === "" ? undefined : text;
    if (spec.kind === "list" && value === undefined) value = null;  // empty: every source / every event
    setPath(entity, spec.path, value);
  }
  if (entity.sources === null) delete entity.sources;
  return { entity: entity, problems: problems };
}

function clearErrors() {
  for (const node of document.querySelectorAll("#settings-form [aria-invalid]")) node.removeAttribute("aria-invalid");
  for (const { input } of form.fields) {
    const box = $(input.id + "-error");
    box.textContent = "";
    box.hidden = true;
  }
  const top = $("settings-error");
  top.textContent = "";
  top.hidden = true;
}

// Each error next to its field (the field of the longest matching path), the rest above the buttons.
function showErrors(errors, fallback) {
  const rest = [];
  for (const e of errors) {
    const match = form.fields
      .filter(({ spec }) => e.field === spec.path || e.field.startsWith(spec.path + ".") || e.field.startsWith(spec.path + "["))
      .sort((a, b) => b.spec.path.length - a.spec.path.length)[0];
    if (!match) { rest.push(e.field ? e.field + ": " + e.message : e.message); continue; }
    const { target, prefix } = match.spec.kind === "filters" ? FilterEditor.errorTarget(match.input, e.field)
      : { target: match.input, prefix: "" };
    const box = $(match.input.id + "-error");
    box.textContent = (box.textContent ? box.textContent + " " : "") + prefix + e.message;
    box.hidden = false;
    if (target) target.setAttribute("aria-invalid", "true");
  }
  if (!errors.length && fallback) rest.push(fallback);
  if (rest.length) { $("settings-error").textContent = rest.join("; "); $("settings-error").hidden = false; }
  const first = document.querySelector("#settings-form [aria-invalid='true']");
  if (first) first.focus();
}

async function save(isNew) {
  clearErrors();
  $("settings-result").textContent = "";
  const { entity, problems } = readForm();
  if (problems.length) { showErrors(problems); return; }
  try {
    const saved = isNew ? await post("/api/v1/config/destinations", entity)
      : await api("/api/v1/config/destinations/" + encodeURIComponent(form.name), {
        method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(entity),
      });
    if (isNew) {  // the new destination is selected, its settings shown as saved
      state.creating = false;
      state.selected = saved.name;
      showView("settings", false);
      await showSettings(saved.name);
    } else {
      form.entity = saved;
    }
    $("settings-result").textContent = "Saved: the next attempt uses these settings.";
    refresh();
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else showErrors(err.errors || [], "Not saved: " + err.message);
  }
}

async function testConnection() {
  const box = $("check-result");
  box.replaceChildren(el("p", {}, "Checking: assume the role, then a DryRun invoke of each function…"));
  try {
    const report = await post(destinationPath(form.name, "/check"));
    box.replaceChildren(el("h4", {}, "Test connection (the saved settings)"),
      el("ul", { class: "check" }, ...report.functions.map(checkLine)));
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else box.replaceChildren(el("p", { class: "error" }, "Test connection failed: " + err.message));
  }
}

function checkLine(f) {
  if (f.ok) return el("li", { class: "ok", "data-function": f.function }, f.function + ": OK (" + Math.round(f.latency_ms) + " ms)");
  const error = [f.error_type, f.error_message].filter(Boolean).join(": ");
  return el("li", { class: "bad", "data-function": f.function },
    f.function + ": " + f.hint.name + (error ? " (" + error + ")" : "") + ". ",
    el("span", { class: "hint" }, "Fix: " + f.hint.fix));
}

async function sendTestEvent() {
  const box = $("test-result");
  box.replaceChildren(el("p", {}, "Sending a test event…"));
  try {
    const result = await post(destinationPath(form.name, "/send"), { type: $("test-event-type").value });
    if (!result.sent) { box.replaceChildren(el("p", {}, result.message)); return; }
    const r = result.response;
    const response = ["Result: " + r.category_name, "Status: " + (r.status_code === null ? "(no answer)" : r.status_code),
      "Error type: " + (r.error_type || "–"), "Message: " + (r.error_message || "–"), "Latency: " + fmtMs(r.latency_ms)];
    if (r.body) response.push("Body: " + r.body);
    box.replaceChildren(el("h4", {}, "Send test event: " + r.category_name),
      el("div", { class: "panes" },
        el("div", {}, el("h5", {}, "You sent"), el("pre", { class: "sent" }, pretty(result.you_sent))),
        el("div", {}, el("h5", {}, "Request to destination"), el("pre", { class: "request" }, pretty(result.request))),
        el("div", {}, el("h5", {}, "Response from destination"), el("pre", { class: "response" }, response.join("\n")),
          el("h5", {}, "Log tail"), el("pre", { class: "log-tail" }, r.log_tail ? logLines(r.log_tail) : noTail({ status: r.status_code })))));
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(err.message);
    else box.replaceChildren(el("p", { class: "error" }, "Send test event failed: " + err.message));
  }
}
