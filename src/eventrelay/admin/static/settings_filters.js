// The "Filters" field of the Settings view: an ordered list editor over a destination's `filters`
// (config/filters.py): each row is a condition (FQL "If") and one action (drop, sample, drop_properties,
// allow_properties) with its value. settings.js places it like any other field and asks it for the list
// to save and for the control a 422's field (filters[1].if) points at. Values are inserted as text.
"use strict";

const FilterEditor = (() => {
  const ACTIONS = [
    { value: "drop", label: "Drop" },
    { value: "sample", label: "Sample" },
    { value: "drop_properties", label: "Drop properties" },
    { value: "allow_properties", label: "Allow properties" },
  ];
  const PROPERTY_ACTIONS = ["drop_properties", "allow_properties"];
  const CONTROL_OF = { if: "cond", sample: "rate", drop_properties: "props", allow_properties: "props", drop: "action" };
  const NAME_OF = { cond: "If", rate: "Rate", props: "Properties", action: "Then" };
  let made = 0;  // ids of the rows' controls, unique on the page however rows move

  function actionOf(filter) {
    return ACTIONS.map((a) => a.value).find((a) => filter[a] !== undefined && filter[a] !== null) || "drop";
  }

  // One row: Filter N, its condition, its action and the action's value, and the buttons that move it.
  function row(filter, disabled) {
    const id = "filter-" + (made += 1);
    const action = actionOf(filter);
    const cond = el("input", { id: id + "-if", class: "filter-if", type: "text", autocomplete: "off",
      spellcheck: "false", placeholder: 'event = "Debug"  (empty: every event)' });
    cond.value = filter.if === undefined || filter.if === null ? "" : filter.if;
    const select = el("select", { id: id + "-action", class: "filter-action" },
      ...ACTIONS.map((a) => el("option", { value: a.value }, a.label)));
    select.value = action;
    const rate = el("input", { id: id + "-rate", class: "filter-rate", type: "text", inputmode: "decimal",
      autocomplete: "off", placeholder: "0.1" });
    rate.value = action === "sample" ? String(filter.sample) : "";
    const props = el("textarea", { id: id + "-props", class: "filter-props", rows: "2", spellcheck: "false",
      placeholder: "context.ip, properties.email" });
    props.value = PROPERTY_ACTIONS.includes(action) ? filter[action].join(", ") : "";
    const rateBox = el("span", { class: "filter-value" }, el("label", { for: rate.id }, "Rate"), rate,
      el("small", { class: "help" }, "0 to 1: 0.1 sends one in ten, the same ones each time"));
    const propsBox = el("span", { class: "filter-value" }, el("label", { for: props.id }, "Properties"), props,
      el("small", { class: "help" }, "comma- or line-separated paths"));
    const shown = () => {
      rateBox.hidden = select.value !== "sample";
      propsBox.hidden = !PROPERTY_ACTIONS.includes(select.value);
    };
    select.addEventListener("change", shown);
    shown();
    const number = el("span", { class: "filter-number" });
    const li = el("li", { class: "filter-row", role: "group" }, number);
    const button = (text, onclick) => el("button", { type: "button", onclick: () => onclick(li) }, text);
    const buttons = el("span", { class: "filter-buttons" },
      button("Move up", up), button("Move down", down), button("Remove", remove));
    li.append(buttons,
      el("span", { class: "filter-line" }, el("label", { for: cond.id }, "If"), cond),
      el("span", { class: "filter-line" }, el("label", { for: select.id }, "Then"), select, rateBox, propsBox));
    li.controls = { cond: cond, action: select, rate: rate, props: props };
    for (const c of [cond, select, rate, props, ...buttons.children]) c.disabled = disabled;
    return li;
  }

  function up(li) { if (li.previousElementSibling) li.parentNode.insertBefore(li, li.previousElementSibling); renumber(li.parentNode); }
  function down(li) { if (li.nextElementSibling) li.parentNode.insertBefore(li.nextElementSibling, li); renumber(li.parentNode); }
  function remove(li) { const list = li.parentNode; li.remove(); renumber(list); }

  // Rows are named by their place (Filter 1 applies first); the ends cannot move further.
  function renumber(list) {
    const rows = [...list.children];
    rows.forEach((li, i) => {
      li.setAttribute("aria-label", "Filter " + (i + 1));
      li.querySelector(".filter-number").textContent = "Filter " + (i + 1);
      const [upButton, downButton] = li.querySelectorAll(".filter-buttons button");
      if (!li.controls.cond.disabled) { upButton.disabled = i === 0; downButton.disabled = i === rows.length - 1; }
    });
    list.parentNode.querySelector(".filter-empty").hidden = rows.length > 0;
  }

  // The editor of `filters` (a list as the Config API shows it), a group labelled by `labelId`.
  function build(id, filters, disabled, labelId, describedBy) {
    const list = el("ol", { class: "filter-rows" }, ...(filters || []).map((f) => row(f, disabled)));
    const add = el("button", { type: "button", class: "filter-add", onclick: () => {
      const li = row({}, false);
      list.append(li);
      renumber(list);
      li.controls.cond.focus();
    } }, "Add filter");
    add.disabled = disabled;
    const root = el("div", { id: id, class: "filter-editor", role: "group", "aria-labelledby": labelId,
      "aria-describedby": describedBy }, list,
    el("p", { class: "note filter-empty" }, "No filters: every event that passes the line above is sent."), add);
    renumber(list);
    return root;
  }

  // The filters as the person left them, in order; a row that cannot be sent adds a problem at its field.
  function read(root, problems) {
    return [...root.querySelectorAll(".filter-row")].map((li, i) => {
      const { cond, action, rate, props } = li.controls;
      const filter = cond.value.trim() ? { if: cond.value.trim() } : {};
      const at = "filters[" + i + "]";
      if (action.value === "drop") filter.drop = true;
      else if (action.value === "sample") {
        const text = rate.value.trim();
        if (!text) problems.push({ field: at + ".sample", message: "give the share of the matching events to send, over 0 up to 1 (0.1: one in ten)" });
        filter.sample = /^(\d+\.?\d*|\.\d+)$/.test(text) ? Number(text) : text;
      } else {
        const paths = props.value.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
        if (!paths.length) problems.push({ field: at + "." + action.value, message: "list at least one property path, e.g. context.ip" });
        filter[action.value] = paths;
      }
      return filter;
    });
  }

  // The control a field path of the Config API names (filters[1].if: row 2's If), and how to say it.
  function errorTarget(root, field) {
    const m = /^filters\[(\d+)\](?:\.([a-z_]+))?/.exec(field);
    const li = m ? root.querySelectorAll(".filter-row")[Number(m[1])] : undefined;
    if (!li) return { target: null, prefix: "" };
    const control = CONTROL_OF[m[2]] || "action";
    return { target: li.controls[control], prefix: "Filter " + (Number(m[1]) + 1) + ", " + NAME_OF[control] + ": " };
  }

  return { build: build, read: read, errorTarget: errorTarget };
})();
