// carebroker console: draws each page from the JSON API the CLI uses.
// No framework, nothing fetched from elsewhere; text goes in with textContent
// only, so a partner name or an error text can never become markup.
"use strict";

(function () {
  const body = document.body;
  const LABELS = JSON.parse(document.getElementById("labels").textContent);
  const LANG = document.documentElement.lang || "en";
  const POLL_MS = 3000;
  const SVG = "http://www.w3.org/2000/svg";

  function L(key) {
    return LABELS[key] || key;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(method, path, payload) {
    const headers = { Accept: "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && body.dataset.csrf) headers["X-CSRF-Token"] = body.dataset.csrf;
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    if (response.status === 401 && body.dataset.page !== "login") {
      window.location.assign("/console/login?next=" + encodeURIComponent(window.location.pathname));
      throw new ApiError(401, L("session_ended"));
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof data.detail === "string" ? data.detail : response.statusText;
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  // --- formatting -----------------------------------------------------------------

  const numberFormat = new Intl.NumberFormat(LANG);
  function num(value) {
    return value === null || value === undefined ? "–" : numberFormat.format(value);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} ${L("seconds")}`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} ${L("minutes")}`;
    return `${(seconds / 3600).toFixed(1)} ${L("hours")}`;
  }

  function when(iso) {
    if (!iso) return L("never");
    return new Date(iso).toLocaleString(LANG, { dateStyle: "short", timeStyle: "medium" });
  }

  function stateBadge(state) {
    return el("span", { class: `state state-${state}`, text: L(`state_${state}`) });
  }

  // --- charts (inline SVG, each with a text alternative) ------------------------------

  function barChart(values, kind, caption) {
    const width = 300;
    const height = 70;
    const max = Math.max(1, ...values);
    const step = width / values.length;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": `${caption}: ${values.reduce((a, b) => a + b, 0)} (${L("per_minute")})`,
    });
    const group = svg("g", { class: `bars ${kind}` });
    values.forEach((value, i) => {
      const h = (value / max) * (height - 4);
      const bar = svg("rect", {
        x: (i * step + 0.5).toFixed(1),
        y: (height - h).toFixed(1),
        width: Math.max(step - 1, 1).toFixed(1),
        height: h.toFixed(1),
      });
      const title = svg("title", {});
      title.textContent = `-${values.length - i} ${L("minutes")}: ${value}`;
      bar.append(title);
      group.append(bar);
    });
    chart.append(svg("line", { class: "axis", x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
    chart.append(group);
    const total = values.reduce((a, b) => a + b, 0);
    return el(
      "figure",
      { class: "chart", "data-chart": kind },
      el("figcaption", {}, el("strong", { text: caption }), ` · ${num(total)} · ${L("per_minute")}`),
      chart
    );
  }

  function sparkline(values, caption) {
    const width = 120;
    const height = 24;
    const max = Math.max(1, ...values);
    const points = values
      .map((v, i) => `${((i / (values.length - 1)) * width).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`)
      .join(" ");
    const chart = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": caption });
    chart.append(svg("polyline", { points }));
    return chart;
  }

  // --- pages ----------------------------------------------------------------------------

  const page = document.getElementById("page");

  function statusLine() {
    return el("p", { class: "status-line", id: "updated" });
  }

  function card(key, value, label) {
    return el(
      "div",
      { class: "card" },
      el("div", { class: "value", id: `total-${key}`, text: num(value) }),
      el("div", { class: "label", text: label })
    );
  }

  function flowsView(data) {
    const t = data.totals;
    const cards = el(
      "div",
      { class: "cards" },
      card("received_5m", t.received_5m, `${L("received")} · ${L("last_minutes")}`),
      card("received_1h", t.received_1h, `${L("received")} · ${L("last_hour")}`),
      card("rejected_1h", t.rejected_1h, `${L("rejected")} · ${L("last_hour")}`),
      card("delivered_5m", t.delivered_5m, `${L("delivered")} · ${L("last_minutes")}`),
      card("delivered_1h", t.delivered_1h, `${L("delivered")} · ${L("last_hour")}`),
      card("failed_1h", t.failed_1h, `${L("failed")} · ${L("last_hour")}`),
      card("queued", t.queued, L("queued")),
      card("dead", t.dead, L("dead"))
    );
    const charts = el(
      "div",
      { class: "charts" },
      barChart(data.series.received, "received", L("received")),
      barChart(data.series.delivered, "delivered", L("delivered")),
      barChart(data.series.failed, "failed", L("failed"))
    );

    const inbound = el(
      "table",
      { id: "inbound" },
      el("caption", { text: L("inbound") }),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", text: L("partner") }),
          el("th", { scope: "col", class: "num", text: `${L("received")} · ${L("last_minutes")}` }),
          el("th", { scope: "col", class: "num", text: `${L("received")} · ${L("last_hour")}` }),
          el("th", { scope: "col", class: "num", text: `${L("rejected")} · ${L("last_hour")}` }),
          el("th", { scope: "col", text: L("per_minute") })
        )
      ),
      el(
        "tbody",
        {},
        data.inbound.map((row) =>
          el(
            "tr",
            { "data-partner": row.partner },
            el(
              "th",
              { scope: "row" },
              row.partner ? row.name : L("unknown_sender"),
              row.partner ? el("div", { class: "sub", text: row.partner }) : null
            ),
            el("td", { class: "num", "data-field": "received_5m", text: num(row.received_5m) }),
            el("td", { class: "num", "data-field": "received_1h", text: num(row.received_1h) }),
            el("td", { class: "num", "data-field": "rejected_1h", text: num(row.rejected_1h) }),
            el("td", {}, sparkline(row.received, `${L("received")}, ${L("per_minute")}`))
          )
        )
      )
    );

    const outbound = el(
      "table",
      { id: "outbound" },
      el("caption", { text: L("outbound") }),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", text: L("partner") }),
          el("th", { scope: "col", text: L("state") }),
          el("th", { scope: "col", class: "num", text: `${L("delivered")} · ${L("last_minutes")}` }),
          el("th", { scope: "col", class: "num", text: `${L("delivered")} · ${L("last_hour")}` }),
          el("th", { scope: "col", class: "num", text: `${L("failed")} · ${L("last_hour")}` }),
          el("th", { scope: "col", class: "num", text: L("queued") }),
          el("th", { scope: "col", class: "num", text: L("oldest_pending") }),
          el("th", { scope: "col", class: "num", text: L("dead") }),
          el("th", { scope: "col", class: "num", text: L("latency") }),
          el("th", { scope: "col", text: L("per_minute") })
        )
      ),
      el(
        "tbody",
        {},
        data.outbound.map((row) =>
          el(
            "tr",
            { "data-partner": row.partner },
            el("th", { scope: "row" }, row.name, el("div", { class: "sub", text: `${row.partner} · ${row.endpoint}` })),
            el("td", { "data-field": "state" }, stateBadge(row.state)),
            el("td", { class: "num", "data-field": "delivered_5m", text: num(row.delivered_5m) }),
            el("td", { class: "num", "data-field": "delivered_1h", text: num(row.delivered_1h) }),
            el("td", { class: "num", "data-field": "failed_1h", text: num(row.failed_1h) }),
            el("td", { class: "num", "data-field": "queued", text: num(row.queued) }),
            el("td", { class: "num", "data-field": "oldest_pending", text: duration(row.oldest_pending_age_s) }),
            el("td", { class: "num", "data-field": "dead", text: num(row.dead) }),
            el("td", { class: "num", "data-field": "latency", text: `${duration(row.latency_p50_s)} / ${duration(row.latency_p95_s)}` }),
            el("td", {}, sparkline(row.delivered, `${L("delivered")}, ${L("per_minute")}`))
          )
        )
      )
    );
    return [cards, charts, inbound, outbound];
  }

  function poll(path, render) {
    const status = statusLine();
    const region = el("div", { id: "content" });
    page.replaceChildren(status, region);
    async function tick() {
      try {
        const data = await api("GET", path);
        region.replaceChildren(...render(data));
        status.textContent = `${L("updated_at")} ${new Date().toLocaleTimeString(LANG)}`;
        status.classList.remove("error");
      } catch (error) {
        if (error.status === 401) return;
        status.textContent = `${L("update_failed")} (${error.message})`;
        status.classList.add("error");
      }
      window.setTimeout(tick, POLL_MS);
    }
    tick();
  }

  function confirmDialog(question) {
    return askDialog(question).then((answer) => answer !== null);
  }

  // Ask for confirmation, with a reason (options.reason: "required" | "optional")
  // and any extra fields (options.fields: [{name, label, node}]). Resolves to
  // null when cancelled, else {reason, <name>: value ...}. Escape cancels.
  function askDialog(question, options) {
    const opts = options || {};
    return new Promise((resolve) => {
      const cancel = el("button", { type: "button", text: L("cancel") });
      const ok = el("button", { type: "submit", class: "primary", text: L("confirm") });
      const problem = el("p", { class: "error", role: "alert", id: "dialog-problem", hidden: true });
      const inputs = [];
      let reason = null;
      if (opts.reason) {
        reason = el("textarea", { id: "dialog-reason", name: "reason", rows: 3, maxlength: 500, "aria-required": opts.reason === "required" ? "true" : null, "aria-describedby": "dialog-problem" });
        inputs.push(el("label", { for: "dialog-reason" }, opts.reason === "required" ? L("reason_required") : L("reason_optional")), reason);
      }
      for (const field of opts.fields || []) {
        field.node.id = `dialog-${field.name}`;
        inputs.push(el("label", { for: field.node.id, text: field.label }), field.node);
      }
      const form = el("form", { method: "dialog", class: "dialog-form", novalidate: true }, el("p", { id: "dialog-question", text: question }), inputs, problem, el("div", { class: "actions" }, cancel, ok));
      const dialog = el("dialog", { "aria-labelledby": "dialog-question" }, form);
      document.body.append(dialog);
      function close(answer) {
        dialog.close();
        dialog.remove();
        resolve(answer);
      }
      cancel.addEventListener("click", () => close(null));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const answer = { reason: reason ? reason.value.trim() : "" };
        if (opts.reason === "required" && !answer.reason) {
          problem.textContent = L("reason_missing");
          problem.hidden = false;
          reason.focus();
          return;
        }
        for (const field of opts.fields || []) answer[field.name] = field.node.value;
        close(answer);
      });
      dialog.addEventListener("cancel", (event) => {
        event.preventDefault();
        close(null);
      });
      dialog.showModal();
      (reason || cancel).focus();
    });
  }

  function isOperator() {
    return body.dataset.role === "operator" || body.dataset.role === "admin";
  }

  function partnerCard(p) {
    const items = [];
    function item(label, ...value) {
      items.push(el("dt", { text: label }), el("dd", {}, ...value));
    }
    const endpoint = p.endpoint ? `${p.endpoint}${p.address ? " · " + p.address : ""}${p.tls ? " · TLS" : ""}` : L("only_sends");
    item(L("endpoint"), endpoint);
    if (p.accepts) item(L("accepts"), p.accepts);
    const state = p.paused ? "paused" : p.outbound ? p.outbound.state : p.inbound && p.inbound.received_1h ? "ok" : "idle";
    item(L("health"), stateBadge(state));
    if (p.paused) {
      item(L("delivery"), el("span", { class: "paused-note", text: `${L("paused_by")} ${p.paused.paused_by.replace(/^user:/, "")} · ${when(p.paused.paused_at)}${p.paused.reason ? " · " + p.paused.reason : ""}` }));
    }
    item(L("last_received"), when(p.health.last_received_at));
    if (p.endpoint) item(L("last_delivered"), when(p.health.last_delivered_at));
    if (p.health.last_error) {
      item(L("last_error"), el("span", { class: "error", text: p.health.last_error }), el("div", { class: "sub", text: when(p.health.last_error_at) }));
    } else if (p.endpoint) {
      item(L("last_error"), L("none"));
    }
    const cert = p.health.certificate;
    if (cert) {
      item(
        L("certificate"),
        cert.error ? el("span", { class: "error", text: cert.error }) : `${L("expires")} ${when(cert.not_after)} (${cert.days_left} ${L("days_left")})`
      );
    }
    const traffic = [];
    if (p.inbound) traffic.push(`${L("received")} ${num(p.inbound.received_1h)}`);
    if (p.outbound) {
      traffic.push(`${L("delivered")} ${num(p.outbound.delivered_1h)}`, `${L("failed")} ${num(p.outbound.failed_1h)}`, `${L("queued")} ${num(p.outbound.queued)}`);
    }
    const series = p.outbound ? p.outbound.delivered : p.inbound ? p.inbound.received : null;
    item(L("traffic"), traffic.join(" · "), series ? el("div", {}, sparkline(series, `${L("traffic")}, ${L("per_minute")}`)) : null);
    let action = null;
    if (p.endpoint && isOperator()) {
      action = el("button", {
        type: "button",
        class: "pause",
        "data-action": p.paused ? "resume" : "pause",
        "aria-label": `${p.paused ? L("resume_delivery") : L("pause_delivery")}: ${p.name}`,
        text: p.paused ? L("resume_delivery") : L("pause_delivery"),
      });
    }
    return el(
      "section",
      { class: "partner", "data-partner": p.id, "aria-labelledby": `partner-${p.id}` },
      el("h2", { id: `partner-${p.id}`, text: p.name }),
      el("div", { class: "sub", text: `${p.id} · ${p.kind}${p.facilities.length ? " · " + p.facilities.join(", ") : ""}` }),
      el("dl", {}, items),
      action ? el("div", { class: "card-actions" }, action) : null
    );
  }

  function partnersPage() {
    const message = el("p", { id: "action-status", role: "status" });
    const toolbar = el("div", { class: "toolbar" });
    const region = el("div", { id: "content" });
    page.replaceChildren(toolbar, message, region);
    async function load() {
      const data = await api("GET", "/api/partners");
      const parts = [el("span", {}, `${L("source")}: `, el("code", { text: data.source })), el("span", { text: `${data.partners.length} ${L("partners_count")}` })];
      if (body.dataset.role === "admin") {
        const button = el("button", { type: "button", id: "reload", text: L("reload") });
        button.addEventListener("click", reload);
        parts.push(button);
      }
      toolbar.replaceChildren(...parts);
      region.replaceChildren(el("div", { class: "partner-grid" }, data.partners.map(partnerCard)));
      for (const button of region.querySelectorAll("button.pause")) {
        const partner = data.partners.find((p) => p.id === button.closest("[data-partner]").dataset.partner);
        button.addEventListener("click", () => pauseOrResume(partner));
      }
    }
    async function pauseOrResume(p) {
      const action = p.paused ? "resume" : "pause";
      const question = `${action === "pause" ? L("pause_confirm") : L("resume_confirm")} ${p.name} (${p.id})`;
      const answer = await askDialog(question, { reason: action === "pause" ? "required" : "optional" });
      if (answer === null) return;
      message.classList.remove("error");
      try {
        await api("POST", `/api/partners/${encodeURIComponent(p.id)}/${action}`, { reason: answer.reason });
        message.textContent = `${action === "pause" ? L("paused_done") : L("resumed_done")}: ${p.name}`;
        await load();
      } catch (error) {
        message.textContent = `${L("action_failed")} ${error.message}`;
        message.classList.add("error");
      }
      const again = document.querySelector(`[data-partner="${CSS.escape(p.id)}"] button.pause`);
      if (again) again.focus();
    }
    async function reload() {
      if (!(await confirmDialog(L("reload_confirm")))) return;
      message.classList.remove("error");
      try {
        const result = await api("POST", "/api/partners/reload");
        message.textContent = `${result.changed ? L("reloaded") : L("reload_unchanged")}: ${result.partners} ${L("partners_count")}`;
        await load();
      } catch (error) {
        message.textContent = `${L("reload_failed")} ${error.message}`;
        message.classList.add("error");
      }
      document.getElementById("reload").focus();
    }
    load().catch((error) => {
      message.textContent = error.message;
      message.classList.add("error");
    });
  }

  function roleSelect(id, value) {
    return el("select", { id, name: "role" }, ["viewer", "operator", "admin"].map((role) => el("option", { value: role, selected: role === value, text: L(`role_${role}`) })));
  }

  function usersPage() {
    if (body.dataset.role !== "admin") {
      page.replaceChildren(el("p", { class: "notice", text: L("admin_only") }));
      return;
    }
    const message = el("p", { id: "action-status", role: "status" });
    const region = el("div", { id: "content" });
    const name = el("input", { id: "new-name", name: "name", autocomplete: "off", required: true });
    const password = el("input", { id: "new-password", name: "password", type: "password", autocomplete: "new-password", required: true });
    const form = el(
      "form",
      { class: "inline", id: "add-user" },
      el("label", { for: "new-name" }, L("user_name"), name),
      el("label", { for: "new-role" }, L("role"), roleSelect("new-role", "viewer")),
      el("label", { for: "new-password" }, L("password"), password),
      el("button", { type: "submit", class: "primary", text: L("add") })
    );
    page.replaceChildren(el("h2", { text: L("add_user") }), form, message, region);

    function report(text, failed) {
      message.textContent = text;
      message.classList.toggle("error", Boolean(failed));
    }
    async function change(user, patch) {
      try {
        await api("PATCH", `/api/users/${encodeURIComponent(user)}`, patch);
        report(`${L("user_saved")}: ${user}`);
        await load();
      } catch (error) {
        report(`${L("action_failed")} ${error.message}`, true);
      }
    }
    async function load() {
      const users = await api("GET", "/api/users");
      const rows = users.map((u) => {
        const select = roleSelect(`role-${u.name}`, u.role);
        select.setAttribute("aria-label", `${L("role")} ${u.name}`);
        const save = el("button", { type: "button", text: L("save") });
        save.addEventListener("click", () => change(u.name, { role: select.value }));
        const toggle = el("button", { type: "button", text: u.disabled ? L("enable") : L("disable") });
        toggle.addEventListener("click", async () => {
          if (await confirmDialog(`${u.disabled ? L("enable") : L("disable")} ${u.name}?`)) change(u.name, { disabled: !u.disabled });
        });
        return el(
          "tr",
          { "data-user": u.name },
          el("th", { scope: "row", text: u.name }),
          el("td", {}, select, " ", save),
          el("td", { text: u.disabled ? L("disabled") : L("active") }),
          el("td", { text: when(u.created_at) }),
          el("td", { text: when(u.last_sign_in_at) }),
          el("td", {}, toggle)
        );
      });
      region.replaceChildren(
        el(
          "table",
          { id: "users" },
          el("caption", { text: L("users") }),
          el("thead", {}, el("tr", {}, [L("user_name"), L("role"), L("status"), L("created"), L("last_sign_in"), ""].map((h) => el("th", { scope: "col", text: h })))),
          el("tbody", {}, rows)
        )
      );
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("POST", "/api/users", { name: name.value.trim(), role: document.getElementById("new-role").value, password: password.value });
        report(`${L("user_added")}: ${name.value.trim()}`);
        form.reset();
        await load();
      } catch (error) {
        report(`${L("action_failed")} ${error.message}`, true);
      }
    });
    load().catch((error) => report(error.message, true));
  }

  function loginPage() {
    const form = document.getElementById("sign-in");
    const error = document.getElementById("sign-in-error");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        await api("POST", "/api/session", {
          name: document.getElementById("name").value.trim(),
          password: document.getElementById("password").value,
        });
        window.location.assign(body.dataset.next || "/console/flows");
      } catch (failure) {
        error.textContent = failure.status === 401 ? L("sign_in_failed") : failure.message;
        error.hidden = false;
        document.getElementById("password").select();
      }
    });
  }

  const signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", async () => {
      try {
        await api("DELETE", "/api/session");
      } finally {
        window.location.assign("/console/login");
      }
    });
  }

  // What the page scripts (messages.js, alerts.js) share; each adds its pages.
  const pages = {
    login: loginPage,
    flows: () => poll("/api/flows", flowsView),
    partners: partnersPage,
    users: usersPage,
  };
  window.carebroker = { L, el, api, num, when, duration, stateBadge, askDialog, confirmDialog, isOperator, page, body, pages, LANG, POLL_MS };

  // Deferred scripts run in order before DOMContentLoaded: every page is registered by then.
  document.addEventListener("DOMContentLoaded", () => {
    const start = pages[body.dataset.page];
    if (start) start();
  });
})();
