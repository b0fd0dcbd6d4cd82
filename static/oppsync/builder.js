/* The smart-list builder (and, with config.mode "campaign", the trigger-campaign editor: triggers
 * above the smart list, then the webhook and the qualification rule), plain JavaScript over the
 * REST API, generated from its catalog.
 * GET /api/v1/filters/ describes every filter, constraint, type and operator; the builder renders
 * rows from it, previews through POST /api/v1/smart-lists/preview/ (debounced, stale requests
 * cancelled) and saves through the API. Every text is inserted with textContent, never as HTML. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("builder-config").textContent);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const state = { catalog: [], byKey: {}, lists: [], filters: [], triggers: [], logic: "all", rule: "" };
  const campaignMode = config.mode === "campaign";
  // Triggers are their activity filters applied to one activity: the same constraints, without
  // those about a history of activities.
  const TRIGGERS = { was_added_to_opportunity: "added_to_opportunity", was_removed_from_opportunity: "removed_from_opportunity", opportunity_was_updated: "opportunity_updated" };
  const NOT_FOR_TRIGGERS = new Set(["date_of_activity", "min_number_of_times"]);
  const listOf = (where) => (where === "triggers" ? state.triggers : state.filters);
  let previewTimer = null;
  let previewAbort = null;

  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  };
  const api = (url, options) => fetch(url, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    ...options,
  });

  // --- values per operator ---------------------------------------------------------------------
  function valueWidget(constraint, spec, onChange) {
    const op = config.operators[constraint.operator];
    if (!op || op.value === "none") return el("span", { class: "os-novalue" });
    const type = spec.type;
    const set = (value) => { constraint.value = value; onChange(); };
    const inputType = type === "date" || type === "datetime" ? "date" : ["number", "currency", "percent"].includes(type) ? "number" : "text";
    const parse = (raw) => (inputType === "number" ? (raw === "" ? null : Number(raw)) : raw);
    if (op.value === "relative") {
      const current = /^(\d+) (day|week|month|year)s?$/.exec(constraint.value || "") || [null, "30", "day"];
      const amount = el("input", { type: "number", min: "1", value: current[1], class: "os-amount", "aria-label": "Amount" });
      const unit = el("select", { "aria-label": "Unit" }, ["day", "week", "month", "year"].map((u) => el("option", { value: u, selected: u === current[2] }, u + "s")));
      const update = () => set(`${amount.value || 0} ${unit.value}${Number(amount.value) === 1 ? "" : "s"}`);
      amount.addEventListener("input", update); unit.addEventListener("change", update);
      if (!constraint.value) { constraint.value = "30 days"; }
      return el("span", { class: "os-relative" }, amount, unit);
    }
    if (op.value === "time_frame") {
      const select = el("select", { "aria-label": "Time frame", onchange: (e) => set(e.target.value) },
        config.timeFrames.map((f) => el("option", { value: f, selected: f === constraint.value }, f.replace("_", " "))));
      if (!constraint.value) constraint.value = config.timeFrames[0];
      return select;
    }
    if (op.value === "pair") {
      const pair = Array.isArray(constraint.value) ? constraint.value : ["", ""];
      const low = el("input", { type: inputType, value: pair[0] ?? "", "aria-label": "From", class: "os-low" });
      const high = el("input", { type: inputType, value: pair[1] ?? "", "aria-label": "To", class: "os-high" });
      const update = () => set([parse(low.value), parse(high.value)]);
      low.addEventListener("input", update); high.addEventListener("input", update);
      return el("span", { class: "os-pair" }, low, " and ", high);
    }
    if (op.value === "many" && type === "picklist") {
      const chosen = new Set(Array.isArray(constraint.value) ? constraint.value : []);
      const select = el("select", { multiple: true, size: Math.min(6, Math.max(3, spec.values.length)), "aria-label": "Values", class: "os-multi",
        onchange: (e) => set(Array.from(e.target.selectedOptions).map((o) => o.value)) },
        spec.values.map((v) => el("option", { value: v, selected: chosen.has(v) }, v)));
      return select;
    }
    const current = op.value === "many" ? (Array.isArray(constraint.value) ? constraint.value.join(", ") : "") : (constraint.value ?? "");
    return el("input", {
      type: inputType, value: current, "aria-label": "Value", class: "os-value",
      placeholder: op.value === "many" && inputType === "text" ? "one, or several separated by commas" : "",
      oninput: (e) => {
        const raw = e.target.value;
        if (op.value === "many") set(inputType === "text" ? raw.split(",").map((s) => s.trim()).filter(Boolean) : raw.split(",").filter((s) => s.trim() !== "").map(parse));
        else set(parse(raw));
      },
    });
  }

  function constraintRow(filter, constraint, fields, fIndex, cIndex, where) {
    const spec = fields.find((f) => f.field === constraint.field) || fields[0];
    const row = el("li", { class: "os-constraint", dataset: { where: `${where}[${fIndex}].constraints[${cIndex}]` } });
    const fieldSelect = el("select", { "aria-label": "Field", class: "os-field",
      onchange: (e) => { constraint.field = e.target.value; const s = fields.find((f) => f.field === constraint.field); constraint.operator = s.operators[0]; delete constraint.value; render(); } },
      fields.map((f) => el("option", { value: f.field, selected: f.field === spec.field }, f.label)));
    const opSelect = el("select", { "aria-label": "Operator", class: "os-operator",
      onchange: (e) => { constraint.operator = e.target.value; delete constraint.value; render(); } },
      spec.operators.map((o) => el("option", { value: o, selected: o === constraint.operator }, config.operators[o].label)));
    row.append(fieldSelect, opSelect, valueWidget(constraint, spec, schedulePreview),
      el("button", { type: "button", class: "os-remove", title: "Remove constraint", onclick: () => { filter.constraints.splice(cIndex, 1); render(); } }, "×"),
      el("span", { class: "os-field-error" }));
    return row;
  }

  function filterCard(filter, index, where = "filters") {
    const entry = state.byKey[filter.filter];
    const isTrigger = where === "triggers";
    const card = el("li", { class: `os-filter-card${isTrigger ? " os-trigger-card" : ""}`, dataset: { where: `${where}[${index}]`, filter: filter.filter } });
    card.append(el("div", { class: "os-filter-title" }, el("span", { class: "os-filter-number" }, isTrigger ? "⚡" : String(index + 1)), entry.label,
      el("button", { type: "button", class: "os-remove", title: isTrigger ? "Remove trigger" : "Remove filter", onclick: () => { listOf(where).splice(index, 1); render(); } }, "×")));
    const line = el("div", { class: "os-filter-line" });
    if (entry.filter === "person_field") {
      const spec = entry.fields.find((f) => f.field === filter.field) || entry.fields[0];
      filter.field = spec.field; filter.operator = spec.operators.includes(filter.operator) ? filter.operator : spec.operators[0];
      const holder = { get operator() { return filter.operator; }, get value() { return filter.value; }, set value(v) { filter.value = v; } };
      line.append(
        el("select", { "aria-label": "Person field", onchange: (e) => { filter.field = e.target.value; filter.operator = undefined; delete filter.value; render(); } },
          entry.fields.map((f) => el("option", { value: f.field, selected: f.field === spec.field }, f.label))),
        el("select", { "aria-label": "Operator", onchange: (e) => { filter.operator = e.target.value; delete filter.value; render(); } },
          spec.operators.map((o) => el("option", { value: o, selected: o === filter.operator }, config.operators[o].label))),
        valueWidget(holder, spec, schedulePreview));
    } else if (entry.value_type === "smart_list") {
      filter.operator = filter.operator || "is";
      const chosen = new Set(filter.value || []);
      line.append(el("select", { "aria-label": "in or not in", onchange: (e) => { filter.operator = e.target.value; schedulePreview(); } },
        el("option", { value: "is", selected: filter.operator === "is" }, "is in"), el("option", { value: "is_not", selected: filter.operator === "is_not" }, "is not in")),
        el("select", { multiple: true, "aria-label": "Smart lists", onchange: (e) => { filter.value = Array.from(e.target.selectedOptions).map((o) => Number(o.value)); schedulePreview(); } },
          state.lists.filter((l) => l.id !== config.id).map((l) => el("option", { value: l.id, selected: chosen.has(l.id) }, l.name))));
    } else if (entry.operators) {
      filter.operator = entry.operators.includes(filter.operator) ? filter.operator : entry.operators[0];
      const spec = { type: entry.value_type, operators: entry.operators, values: [] };
      line.append(el("select", { "aria-label": "Operator", onchange: (e) => { filter.operator = e.target.value; delete filter.value; render(); } },
        entry.operators.map((o) => el("option", { value: o, selected: o === filter.operator }, config.operators[o].label))),
        valueWidget(filter, spec, schedulePreview));
    }
    if (entry.fields && entry.filter !== "person_field") {
      filter.field = filter.field || "StageName";
      line.append(el("label", {}, "Changed field ", el("select", { "aria-label": "Changed field", onchange: (e) => { filter.field = e.target.value; render(); } },
        entry.fields.map((f) => el("option", { value: f.field, selected: f.field === filter.field }, f.label)))));
    }
    card.append(line);
    if (entry.constraints && entry.constraints.length) {
      let fields = entry.constraints.slice();
      if (entry.value_constraints) {
        const changed = entry.fields.find((f) => f.field === filter.field) || entry.fields[0];
        fields = [{ ...changed, field: "new_value", label: `New value (${changed.label})` }, { ...changed, field: "previous_value", label: `Previous value (${changed.label})` }, ...fields];
      }
      filter.constraints = filter.constraints || [];
      const list = el("ul", { class: "os-constraints" }, filter.constraints.map((c, ci) => constraintRow(filter, c, fields, index, ci, where)));
      const add = el("select", { "aria-label": "Add constraint", class: "os-add-constraint",
        onchange: (e) => { const spec = fields.find((f) => f.field === e.target.value); filter.constraints.push({ field: spec.field, operator: spec.operators[0] }); render(); } },
        el("option", { value: "" }, "+ Add constraint…"), fields.map((f) => el("option", { value: f.field }, f.label)));
      card.append(list, add);
    }
    card.append(el("div", { class: "os-field-error os-filter-error" }));
    return card;
  }

  // --- palette, logic, rendering -----------------------------------------------------------------
  function renderPalette() {
    const query = document.getElementById("palette-search").value.trim().toLowerCase();
    const palette = document.getElementById("palette");
    palette.replaceChildren();
    const groups = {};
    for (const entry of state.catalog) {
      if (query && !entry.label.toLowerCase().includes(query) && !entry.group.toLowerCase().includes(query)) continue;
      (groups[entry.group] = groups[entry.group] || []).push(entry);
    }
    for (const [group, entries] of Object.entries(groups)) {
      palette.append(el("h4", {}, group), el("ul", {}, entries.map((entry) =>
        el("li", {}, el("button", { type: "button", class: `os-palette-item${entry.trigger ? " os-palette-trigger" : ""}`, dataset: { filter: entry.filter },
          onclick: () => { (entry.trigger ? state.triggers : state.filters).push({ filter: entry.filter, constraints: [] }); render(); } }, entry.label)))));
    }
    if (!Object.keys(groups).length) palette.append(el("p", { class: "os-empty" }, "No filter matches."));
  }

  function definition() {
    return { logic: state.logic === "advanced" ? state.rule : state.logic, filters: state.filters };
  }

  function render() {
    const list = document.getElementById("filters");
    list.replaceChildren(...state.filters.map((f, i) => filterCard(f, i)));
    document.getElementById("filters-empty").hidden = state.filters.length > 0;
    if (campaignMode) {
      document.getElementById("triggers").replaceChildren(...state.triggers.map((f, i) => filterCard(f, i, "triggers")));
      document.getElementById("triggers-empty").hidden = state.triggers.length > 0;
    }
    schedulePreview();
  }

  function showErrors(errors) {
    document.querySelectorAll(".os-field-error, [data-error-for]").forEach((n) => { n.textContent = ""; });
    document.querySelectorAll(".os-invalid").forEach((n) => n.classList.remove("os-invalid"));
    for (const [where, messages] of Object.entries(errors || {})) {
      const text = messages.join(" ");
      if (where === "logic") { document.getElementById("logic-error").textContent = text; continue; }
      const place = where.replace(/^smart_list\./, "");
      if (place === "logic") { document.getElementById("logic-error").textContent = text; continue; }
      const slotFor = document.querySelector(`[data-error-for="${place.split(".").slice(0, 2).join(".")}"]`) || document.querySelector(`[data-error-for="${place.split(".")[0]}"]`);
      if (slotFor) { slotFor.textContent = text; continue; }
      const match = /^(filters|triggers)\[(\d+)\](?:\.constraints\[(\d+)\])?/.exec(place);
      let target = null;
      if (match && match[3] !== undefined) target = document.querySelector(`[data-where="${match[1]}[${match[2]}].constraints[${match[3]}]"]`);
      else if (match) target = document.querySelector(`[data-where="${match[1]}[${match[2]}]"]`);
      const slot = target && (target.querySelector(":scope > .os-field-error") || target.querySelector(".os-filter-error"));
      if (slot) { slot.textContent = text; target.classList.add("os-invalid"); }
      else message(text, true);
    }
  }

  function message(text, isError) {
    const box = document.getElementById("builder-message");
    box.textContent = text; box.hidden = !text; box.classList.toggle("os-error", Boolean(isError));
  }

  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 400);
  }

  async function preview() {
    const count = document.getElementById("live-count");
    if (previewAbort) previewAbort.abort();  // a newer edit wins: drop the stale request
    if (!state.filters.length) {
      count.textContent = campaignMode ? "Everyone who triggers" : "—"; delete count.dataset.state; delete count.dataset.count;
      document.getElementById("preview-table").removeAttribute("aria-busy"); fillPreview([]); return;
    }
    const controller = previewAbort = new AbortController();
    // The count is exact (never the planner's estimate), so a big list may take a moment: say so
    // until it comes, and keep no number of the previous definition on the page meanwhile.
    count.textContent = "Counting…"; count.dataset.state = "loading"; delete count.dataset.count;
    document.getElementById("preview-table").setAttribute("aria-busy", "true");
    try {
      const response = await api("/api/v1/smart-lists/preview/?page_size=10", { method: "POST", body: JSON.stringify(definition()), signal: controller.signal });
      const body = await response.json();
      if (response.ok) {
        showErrors({}); message("", false);
        count.textContent = `${body.count.toLocaleString()} ${body.count === 1 ? "person" : "people"}`;
        count.dataset.state = "ok"; count.dataset.count = body.count;
        fillPreview(body.results);
      } else {
        count.textContent = "Fix the highlighted filters"; count.dataset.state = "error";
        showErrors(response.status === 400 ? body : { detail: [body.detail || "The preview failed."] });
      }
    } catch (error) {
      if (error.name !== "AbortError") { count.textContent = "Preview failed"; count.dataset.state = "error"; message(String(error), true); }
    }
    if (!controller.signal.aborted) document.getElementById("preview-table").removeAttribute("aria-busy");
  }

  function fillPreview(people) {
    const body = document.querySelector("#preview-table tbody");
    body.replaceChildren(...people.map((p) => el("tr", {},
      el("td", {}, el("a", { href: config.personUrl.replace("/0/", `/${p.id}/`) }, `${p.first_name} ${p.last_name}`.trim() || p.email || `Person ${p.id}`)),
      el("td", {}, p.email || "—"), el("td", {}, p.company || "—"), el("td", {}, p.title || "—"))));
    document.getElementById("preview-note").textContent = people.length ? `first ${people.length}` : "";
  }

  function campaignPayload() {
    const headers = {};
    for (const line of document.getElementById("webhook-headers").value.split("\n")) {
      const at = line.indexOf(":");
      if (line.trim() && at > 0) headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const webhook = { url: document.getElementById("webhook-url").value.trim(), headers };
    const secret = document.getElementById("webhook-secret").value;
    if (secret) webhook.secret = secret;
    const rule = document.querySelector("input[name=qualification]:checked").value;
    return {
      name: document.getElementById("list-name").value.trim(),
      description: document.getElementById("list-description").value,
      is_active: document.getElementById("campaign-active").checked,
      triggers: state.triggers.map((t) => ({ trigger: TRIGGERS[t.filter.replace(/^trigger:/, "")], ...(t.field ? { field: t.field } : {}), constraints: t.constraints || [] })),
      smart_list: state.filters.length ? definition() : null,
      qualification: rule === "once_every_days" ? { once_every_days: Number(document.getElementById("qualification-days").value) } : rule,
      webhook,
    };
  }

  async function saveCampaign() {
    const payload = campaignPayload();
    if (!payload.name) { message("Give the campaign a name.", true); return; }
    const url = config.id ? `/api/v1/campaigns/${config.id}/` : "/api/v1/campaigns/";
    const response = await api(url, { method: config.id ? "PUT" : "POST", body: JSON.stringify(payload) });
    const body = await response.json();
    if (!response.ok) { showErrors(response.status === 400 ? body : { detail: [body.detail] }); message("Not saved: fix the highlighted problems.", true); return; }
    const deliveries = `${config.changelistUrl}${body.id}/deliveries/`;
    if (body.webhook && body.webhook.secret) {
      // The one time the generated secret is shown: the receiver needs it to check signatures.
      const box = document.getElementById("secret-once");
      box.hidden = false;
      document.getElementById("secret-value").textContent = body.webhook.secret;
      box.querySelector("a").href = deliveries;
      showErrors({}); message("", false);
      return;
    }
    window.location.href = deliveries;
  }

  async function save() {
    if (campaignMode) { await saveCampaign(); return; }
    const payload = { name: document.getElementById("list-name").value.trim(), description: document.getElementById("list-description").value, ...definition() };
    if (!payload.name) { message("Give the list a name.", true); return; }
    const url = config.id ? `/api/v1/smart-lists/${config.id}/` : "/api/v1/smart-lists/";
    const response = await api(url, { method: config.id ? "PUT" : "POST", body: JSON.stringify(payload) });
    const body = await response.json();
    if (!response.ok) { showErrors(response.status === 400 ? body : { detail: [body.detail] }); message("Not saved: fix the highlighted problems.", true); return; }
    window.location.href = `${config.changelistUrl}${body.id}/members/`;
  }

  async function start() {
    document.getElementById("list-name").value = config.name;
    document.getElementById("list-description").value = config.description;
    const saveButton = document.getElementById("save-list");
    if (config.canSave) saveButton.addEventListener("click", save); else saveButton.hidden = true;
    if (campaignMode) {
      const campaign = config.campaign;
      state.triggers = (campaign.triggers || []).map((t) => ({ filter: `trigger:${Object.keys(TRIGGERS).find((k) => TRIGGERS[k] === t.trigger) || "was_added_to_opportunity"}`, ...(t.field ? { field: t.field } : {}), constraints: JSON.parse(JSON.stringify(t.constraints || [])) }));
      config.definition = campaign.smart_list || { logic: "all", filters: [] };
    }
    const logic = config.definition.logic || "all";
    state.logic = ["all", "any"].includes(logic) ? logic : "advanced";
    state.rule = state.logic === "advanced" ? logic : "";
    state.filters = JSON.parse(JSON.stringify(config.definition.filters || []));
    const rule = document.getElementById("logic-rule");
    rule.value = state.rule; rule.hidden = state.logic !== "advanced";
    document.querySelectorAll("input[name=logic]").forEach((radio) => {
      radio.checked = radio.value === state.logic;
      radio.addEventListener("change", () => { state.logic = radio.value; rule.hidden = state.logic !== "advanced"; document.getElementById("logic-error").textContent = ""; schedulePreview(); });
    });
    rule.addEventListener("input", () => { state.rule = rule.value; schedulePreview(); });
    document.getElementById("palette-search").addEventListener("input", renderPalette);
    const [catalog, lists] = await Promise.all([
      api("/api/v1/filters/").then((r) => r.json()),
      api("/api/v1/smart-lists/?page_size=1000").then((r) => (r.ok ? r.json() : { results: [] })),
    ]);
    state.catalog = catalog; state.lists = lists.results || [];
    if (campaignMode) {
      const triggers = catalog.filter((entry) => TRIGGERS[entry.filter]).map((entry) => ({
        ...entry, filter: `trigger:${entry.filter}`, trigger: TRIGGERS[entry.filter], group: "Triggers",
        label: config.triggerLabels[TRIGGERS[entry.filter]],
        constraints: (entry.constraints || []).filter((c) => !NOT_FOR_TRIGGERS.has(c.field)),
      }));
      state.catalog = [...triggers, ...catalog];
    }
    for (const entry of state.catalog) state.byKey[entry.filter] = entry;
    renderPalette(); render();
  }
  start();
})();
