// carebroker console: the message browser (search, one message, dead letters).
// Metadata comes from the status API; clinical content only on an operator's
// request, from the audited content endpoints. Text goes in with textContent.
"use strict";

(function () {
  const { L, el, api, num, when, askDialog, isOperator, page, body, pages, POLL_MS } = window.carebroker;

  const MESSAGES = "/api/messages";
  const TIMELINE = (id) => `${MESSAGES}/${id}/audit`;
  const PAGE_SIZE = 50;
  const MESSAGE_STATUSES = ["accepted", "rejected", "routed", "unroutable", "blocked"];
  const DELIVERY_STATUSES = ["pending", "delivered", "failed", "dead", "blocked"];
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function statusText(status) {
    return L(`status_${status}`);
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${status}`, text: statusText(status) });
  }

  function report(node, text, failed) {
    node.textContent = text;
    node.classList.toggle("error", Boolean(failed));
  }

  function who(actor) {
    return actor && actor.startsWith("user:") ? actor.slice(5) : actor;
  }

  function table(id, caption, headers, rows) {
    return el(
      "table",
      { id },
      caption ? el("caption", { text: caption }) : null,
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows)
    );
  }

  // --- search ---------------------------------------------------------------------------

  // Each field of the form and the query parameters that carry it, in order of
  // preference: the form offers a field only when GET /api/messages declares
  // one of them (read from /openapi.json), so filters the API gains later
  // appear without changing this page, and none is sent that it would ignore.
  const FIELDS = [
    { key: "control_id", label: "control_id", params: ["control_id"] },
    { key: "sender", label: "sender", params: ["sender"], partners: true },
    { key: "recipient", label: "recipient", params: ["recipient"], partners: true },
    { key: "type", label: "message_type", params: ["message_type", "type"], placeholder: "ORU^R01" },
    { key: "status", label: "status", params: ["status"], choices: MESSAGE_STATUSES },
    { key: "delivery_status", label: "delivery_status", params: ["delivery_status"], choices: DELIVERY_STATUSES },
    { key: "since", label: "since", params: ["since"], time: true },
    { key: "until", label: "until", params: ["until"], time: true },
    { key: "patient_authority", label: "patient_authority", params: ["patient_authority"], operator: true },
    { key: "patient_id", label: "patient_id", params: ["patient_id"], operator: true, secret: true },
  ];
  const CURSOR_PARAMS = ["next", "cursor", "after", "before"];

  async function searchParameters() {
    try {
      const spec = await api("GET", "/openapi.json");
      const operation = ((spec.paths || {})[MESSAGES] || {}).get || {};
      return new Set((operation.parameters || []).map((p) => p.name));
    } catch (error) {
      return new Set(["control_id", "sender", "status", "since"]);
    }
  }

  function toLocalInput(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function fieldInput(field, value) {
    const id = `f-${field.key}`;
    let input;
    if (field.choices) {
      input = el("select", { id, name: field.key }, el("option", { value: "", text: L("any") }), field.choices.map((c) => el("option", { value: c, selected: c === value, text: statusText(c) })));
    } else {
      input = el("input", {
        id,
        name: field.key,
        type: field.time ? "datetime-local" : "text",
        value: field.time && value ? toLocalInput(value) : value || "",
        list: field.partners ? "partner-ids" : null,
        placeholder: field.placeholder || null,
        autocomplete: "off",
        spellcheck: "false",
      });
    }
    return el("label", { for: id }, L(field.label), input);
  }

  async function messagesPage() {
    const supported = await searchParameters();
    const query = new URLSearchParams(window.location.search);
    const fields = FIELDS.filter((f) => f.params.some((p) => supported.has(p)) && (!f.operator || isOperator()));
    const cursorParam = CURSOR_PARAMS.find((p) => supported.has(p));
    const idInput = el("input", { id: "f-id", name: "id", autocomplete: "off", spellcheck: "false", size: 36 });
    const partnerList = el("datalist", { id: "partner-ids" });
    const form = el(
      "form",
      { id: "search", class: "inline search", role: "search", "aria-label": L("search") },
      el("label", { for: "f-id" }, L("carebroker_id"), idInput),
      fields.map((f) => fieldInput(f, query.get(f.key))),
      el("button", { type: "submit", class: "primary", text: L("search") }),
      el("button", { type: "reset", id: "clear", text: L("clear") }),
      partnerList
    );
    const note = fields.some((f) => f.operator) ? el("p", { class: "sub", text: L("patient_search_audited") }) : null;
    const status = el("p", { id: "search-status", role: "status" });
    const results = el("div", { id: "results" });
    const more = el("button", { type: "button", id: "more", hidden: true, text: L("older") });
    page.replaceChildren(...[form, note, status, results, more].filter(Boolean));

    api("GET", "/api/partners")
      .then((data) => partnerList.replaceChildren(...data.partners.map((p) => el("option", { value: p.id, text: p.name }))))
      .catch(() => {});

    let cursor = null;
    let rows = [];

    function params() {
      const out = new URLSearchParams();
      for (const f of fields) {
        const input = document.getElementById(`f-${f.key}`);
        let value = input.value.trim();
        if (!value) continue;
        if (f.time) value = new Date(value).toISOString();
        out.set(f.key, value);
      }
      return out;
    }

    function apiQuery(formParams) {
      const out = new URLSearchParams();
      for (const f of fields) {
        const value = formParams.get(f.key);
        if (value) out.set(f.params.find((p) => supported.has(p)), value);
      }
      if (supported.has("limit")) out.set("limit", String(PAGE_SIZE));
      if (cursor && cursorParam) out.set(cursorParam, cursor);
      return out;
    }

    function render() {
      if (!rows.length) {
        results.replaceChildren(el("p", { class: "notice", text: L("no_messages") }));
        return;
      }
      results.replaceChildren(
        table(
          "messages",
          L("messages_found"),
          [L("received_at"), L("control_id"), L("message_type"), L("sender"), L("status"), L("deliveries")],
          rows.map((m) =>
            el(
              "tr",
              { "data-message": m.id },
              el("td", { text: when(m.received_at) }),
              el("td", {}, el("a", { href: `/console/messages/${m.id}`, text: m.control_id || m.id })),
              el("td", { text: m.message_type }),
              el("td", { text: m.sender || L("unknown_sender") }),
              el("td", {}, statusBadge(m.status), m.reason ? el("div", { class: "sub", text: m.reason }) : null),
              el("td", { text: Object.entries(m.deliveries || {}).map(([s, n]) => `${statusText(s)} ${num(n)}`).join(" · ") || "–" })
            )
          )
        )
      );
    }

    let runs = 0;
    async function run(formParams, append) {
      const mine = ++runs;
      if (!append) cursor = null;
      report(status, L("loading"));
      try {
        // The filters go in a POST body, not the URL: a patient identifier must not
        // end up in the access log of a proxy on the way.
        const data = await api("POST", `${MESSAGES}/search`, Object.fromEntries(apiQuery(formParams)));
        if (mine !== runs) return; // a newer search answered or will answer
        if (!append) rows = [];
        const found = Array.isArray(data) ? data : data.messages || [];
        rows = rows.concat(found);
        cursor = data.next || null;
        more.hidden = !(cursor && cursorParam);
        const patient = formParams.get("patient_id") ? ` ${L("patient_search_audited")}` : "";
        report(status, `${num(rows.length)} ${L("messages_count")}.${patient}`);
        render();
      } catch (error) {
        report(status, `${L("search_failed")} ${error.message}`, true);
      }
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const id = idInput.value.trim();
      if (id) {
        if (UUID.test(id)) {
          window.location.assign(`/console/messages/${id.toLowerCase()}`);
        } else {
          report(status, L("not_an_id"), true);
          idInput.focus();
        }
        return;
      }
      const formParams = params();
      const search = formParams.toString();
      window.history.replaceState(null, "", `/console/messages${search ? "?" + search : ""}`);
      await run(formParams, false);
      const first = results.querySelector("a");
      if (first) first.focus();
    });
    form.addEventListener("reset", () => {
      window.setTimeout(() => {
        window.history.replaceState(null, "", "/console/messages");
        run(new URLSearchParams(), false);
      });
    });
    more.addEventListener("click", () => run(params(), true));
    await run(params(), false);
  }

  // --- one message ----------------------------------------------------------------------

  function dl(entries) {
    return el(
      "dl",
      { class: "facts" },
      entries.filter(([, value]) => value !== null && value !== undefined && value !== "").flatMap(([label, value]) => [el("dt", { text: label }), el("dd", {}, value)])
    );
  }

  function eventLine(e) {
    const d = e.detail || {};
    const parts = [];
    if (e.recipient) parts.push(`→ ${e.recipient}`);
    if (e.rule) parts.push(`${L("rule")} ${e.rule}`);
    if (d.attempt) parts.push(`${L("attempt")} ${d.attempt}`);
    if (d.ack_code) parts.push(`${L("ack")} ${d.ack_code}`);
    if (d.part) parts.push(d.part === "original" ? L("content_original") : L("content_sent"));
    if (d.previous_status) parts.push(`${L("was")} ${statusText(d.previous_status)}`);
    return { parts, reason: d.reason };
  }

  function timelineView(events) {
    if (!events.length) return el("p", { class: "notice", text: L("timeline_empty") });
    return el(
      "ol",
      { id: "timeline", class: "timeline" },
      events.map((e) => {
        const { parts, reason } = eventLine(e);
        return el(
          "li",
          { "data-kind": e.kind, class: `outcome-${e.outcome}` },
          el("time", { datetime: e.occurred_at, text: when(e.occurred_at) }),
          " ",
          el("strong", { class: "kind", text: L(`kind_${e.kind}`) }),
          parts.length ? ` · ${parts.join(" · ")}` : "",
          el("span", { class: "sub" }, ` · ${who(e.actor)}`),
          reason ? el("div", { class: "reason", text: String(reason) }) : null
        );
      })
    );
  }

  function attemptsOf(delivery, events) {
    const kinds = new Set(["delivered", "retried", "failed", "delivery_attempted", "replayed", "dead_letter_discarded"]);
    return events.filter((e) => kinds.has(e.kind) && e.detail && e.detail.delivery_id === delivery.id);
  }

  function attemptList(items) {
    if (!items.length) return null;
    return el(
      "ul",
      { class: "attempts" },
      items.map((e) => {
        const d = e.detail;
        const code = d.ack_code ? ` · ${L("ack")} ${d.ack_code}` : "";
        const label = d.attempt ? `${L("attempt")} ${d.attempt}: ${L(`kind_${e.kind}`)}` : L(`kind_${e.kind}`);
        return el("li", {}, `${when(e.occurred_at)} · ${label}${code}`, d.reason ? el("span", { class: "sub", text: ` · ${d.reason}` }) : null);
      })
    );
  }

  // HL7 v2: one table, a group of rows per segment; components under their field.
  function segmentsView(segments, id) {
    return el(
      "table",
      { class: "segments", id },
      el("thead", {}, el("tr", {}, [L("field"), L("field_name"), L("value")].map((h) => el("th", { scope: "col", text: h })))),
      segments.map((s, index) =>
        el(
          "tbody",
          { "data-segment": s.name },
          el("tr", { class: "segment" }, el("th", { scope: "rowgroup", colspan: 3 }, el("code", { text: s.name }), s.description ? ` ${s.description}` : "", el("span", { class: "sub", text: ` #${index + 1}` }))),
          s.fields.map((f) =>
            el(
              "tr",
              { "data-field": f.position },
              el("th", { scope: "row" }, el("code", { text: f.position })),
              el("td", { text: f.name || "–" }),
              el(
                "td",
                {},
                el("code", { class: "value", text: f.value }),
                f.components.length ? el("ul", { class: "components" }, f.components.map((c) => el("li", {}, el("code", { text: c.position }), ` ${c.name || ""}: `, el("span", { class: "value", text: c.value })))) : null
              )
            )
          )
        )
      )
    );
  }

  // FHIR: the resource as a tree; objects and arrays fold, the first levels open.
  function tree(value, depth) {
    if (value === null || typeof value !== "object") {
      return el("span", { class: `json-${value === null ? "null" : typeof value}`, text: JSON.stringify(value) });
    }
    const entries = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value);
    const kind = Array.isArray(value) ? `[${value.length}]` : value.resourceType ? value.resourceType : "{…}";
    return el(
      "details",
      { open: depth < 3 },
      el("summary", { text: kind }),
      el(
        "ul",
        { class: "tree" },
        entries.map(([key, child]) => el("li", {}, el("span", { class: "key", text: key }), ": ", tree(child, depth + 1)))
      )
    );
  }

  function contentView(content, id) {
    if (!content) return el("p", { class: "notice", text: L("no_content") });
    const parts = [el("p", { class: "sub", text: `${content.format} · ${num(content.size)} ${L("bytes")} · ${content.charset || ""}${content.truncated ? " · " + L("truncated") : ""}` })];
    if (content.problem) parts.push(el("p", { class: "notice", text: `${L("not_labelled")} ${content.problem}` }));
    if (content.segments) parts.push(segmentsView(content.segments, id));
    else if (content.resource !== null && content.resource !== undefined) parts.push(el("div", { class: "json", id }, tree(content.resource, 0)));
    parts.push(el("details", { class: "raw" }, el("summary", { text: L("as_received") }), el("pre", { text: content.text })));
    return el("div", { class: "content" }, parts);
  }

  async function messagePage() {
    const id = body.dataset.message;
    const title = document.getElementById("title");
    const status = el("p", { id: "action-status", role: "status" });
    const summary = el("section", { id: "summary", "aria-labelledby": "summary-h" });
    const deliveries = el("section", { id: "deliveries", "aria-labelledby": "deliveries-h" });
    const sent = el("div", { id: "sent" });
    const mssante = el("section", { id: "mssante", "aria-labelledby": "mssante-h" });
    const timeline = el("section", { id: "timeline-section", "aria-labelledby": "timeline-h" });
    const original = el("section", { id: "original", "aria-labelledby": "original-h" }, el("h2", { id: "original-h", text: L("original_message") }));
    page.replaceChildren(status, summary, deliveries, mssante, timeline, original, sent);

    let detail = null;
    let mails = { mails: [], zams: [] };
    let events = [];
    let shown = "";

    if (isOperator()) {
      const show = el("button", { type: "button", id: "show-original", text: L("show_original") });
      show.addEventListener("click", async () => {
        try {
          const data = await api("GET", `${MESSAGES}/${id}/content`);
          show.replaceWith(contentView(data.original, "original-segments"));
          original.focus();
        } catch (error) {
          report(status, `${L("action_failed")} ${error.message}`, true);
        }
      });
      original.append(el("p", { class: "sub", text: L("content_audited") }), show);
      original.tabIndex = -1;
    } else {
      original.append(el("p", { class: "notice", id: "content-refused", text: L("content_needs_operator") }));
    }

    async function replay(recipient) {
      const question = recipient ? `${L("replay_to_confirm")} ${recipient}?` : L("replay_all_confirm");
      const answer = await askDialog(question, { reason: "optional" });
      if (answer === null) return;
      try {
        const done = await api("POST", `${MESSAGES}/${id}/replay`, { recipient, reason: answer.reason });
        let text = `${L("replayed_done")}: ${num(done.deliveries)} ${L("deliveries_count")}`;
        if (done.rerouted) text += ` · ${L("rerouted")}`;
        if (done.skipped.length) text += ` · ${L("skipped")}: ${done.skipped.join("; ")}`;
        report(status, text);
        await refresh();
      } catch (error) {
        report(status, `${L("action_failed")} ${error.message}`, true);
      }
    }

    async function showSent(delivery) {
      try {
        const data = await api("GET", `${MESSAGES}/${id}/deliveries/${delivery.id}/content`);
        const panel = el(
          "section",
          { class: "sent", id: `sent-${delivery.id}`, "data-recipient": delivery.recipient, tabindex: -1, "aria-labelledby": `sent-h-${delivery.id}` },
          el("h2", { id: `sent-h-${delivery.id}`, text: `${L("sent_to")} ${delivery.recipient}` }),
          el("h3", { text: L("what_was_sent") }),
          contentView(data.sent, `sent-segments-${delivery.id}`),
          el("h3", { text: `${L("partner_answer")}${data.ack_code ? " (" + data.ack_code + ")" : ""}` }),
          data.answer ? contentView(data.answer, `answer-segments-${delivery.id}`) : el("p", { class: "notice", text: L("no_answer") })
        );
        const existing = document.getElementById(`sent-${delivery.id}`);
        if (existing) existing.replaceWith(panel);
        else sent.append(panel);
        panel.focus();
      } catch (error) {
        report(status, `${L("action_failed")} ${error.message}`, true);
      }
    }

    function render() {
      const m = detail;
      title.textContent = `${L("message")} ${m.control_id || m.id}`;
      document.title = `${title.textContent} · carebroker`;
      const actions = [];
      if (isOperator()) {
        const all = el("button", { type: "button", id: "replay-all", text: L("replay_all") });
        all.addEventListener("click", () => replay(null));
        actions.push(el("div", { class: "toolbar" }, all));
      }
      summary.replaceChildren(
        el("h2", { id: "summary-h", text: L("summary") }),
        dl([
          [L("carebroker_id"), el("code", { text: m.id })],
          [L("control_id"), m.control_id],
          [L("message_type"), `${m.message_type}${m.version ? " · v" + m.version : ""}`],
          [L("sender"), m.sender || L("unknown_sender")],
          [L("channel"), `${m.channel} · ${m.format}`],
          [L("peer"), m.peer ? `${m.peer}${m.peer_certificate ? " · " + m.peer_certificate : ""}` : null],
          [L("received_at"), when(m.received_at)],
          [L("status"), statusBadge(m.status)],
          [L("reason"), m.reason],
        ]),
        ...actions
      );
      const rows = m.deliveries.map((d) => {
        const cells = [
          el("th", { scope: "row" }, d.recipient, el("div", { class: "sub", text: d.rules.join(", ") })),
          el("td", { "data-field": "status" }, statusBadge(d.status), d.flagged ? el("div", { class: "sub", text: L("flagged") }) : null),
          el("td", { class: "num", "data-field": "attempts", text: num(d.attempts) }),
          el("td", { "data-field": "ack", text: d.ack_code || "–" }),
          el("td", { "data-field": "delivered_at", text: d.delivered_at ? when(d.delivered_at) : "–" }),
          el("td", { class: "num", "data-field": "replays", text: num(d.replays) }),
          el("td", {}, d.last_error ? el("span", { class: "error", text: d.last_error }) : "–", attemptList(attemptsOf(d, events))),
        ];
        if (isOperator()) {
          const show = el("button", { type: "button", id: `show-${d.id}`, "aria-label": `${L("show_sent")}: ${d.recipient}`, text: L("show_sent") });
          show.addEventListener("click", () => showSent(d));
          const again = el("button", { type: "button", id: `replay-${d.id}`, "aria-label": `${L("replay")}: ${d.recipient}`, text: L("replay") });
          again.addEventListener("click", () => replay(d.recipient));
          cells.push(el("td", { class: "row-actions" }, show, again));
        }
        return el("tr", { "data-recipient": d.recipient, "data-delivery": d.id }, cells);
      });
      const headers = [L("recipient"), L("status"), L("attempts"), L("ack"), L("delivered_at"), L("replays"), L("attempts_and_errors")];
      if (isOperator()) headers.push(L("actions"));
      deliveries.replaceChildren(
        el("h2", { id: "deliveries-h", text: L("deliveries") }),
        m.deliveries.length ? table("delivery-table", null, headers, rows) : el("p", { class: "notice", text: L("no_deliveries") })
      );
      timeline.replaceChildren(el("h2", { id: "timeline-h", text: L("timeline") }), el("p", { class: "sub", text: L("timeline_note") }), timelineView(events));
      renderMails();
    }

    function renderMails() {
      // Only for a CI-SIS document request mailed over MSSanté.
      if (!mails.mails.length && !mails.zams.length) {
        mssante.replaceChildren();
        return;
      }
      const rows = mails.mails.map((m) =>
        el(
          "tr",
          { "data-mail": m.delivery_id, "data-state": m.state },
          el("th", { scope: "row" }, m.recipient, el("div", { class: "sub", text: [m.notice_asked ? L("notice_asked") : "", m.receipt_asked ? L("receipt_asked") : ""].filter(Boolean).join(" · ") })),
          el("td", { "data-field": "state" }, el("span", { class: `status status-${m.state === "failed" ? "failed" : m.state === "pending" ? "pending" : "delivered"}`, text: L(`mailstate_${m.state}`) }), m.notice_overdue ? el("div", { class: "sub error", text: L("notice_overdue") }) : null),
          el("td", { text: m.sent_at ? when(m.sent_at) : "–" }),
          el("td", { text: m.delivered_at ? when(m.delivered_at) : "–" }),
          el("td", { text: m.read_at ? when(m.read_at) : "–" }),
          el("td", { "data-field": "words" }, m.failed ? el("span", { class: "error", text: m.failed }) : m.read_error ? el("span", { class: "error", text: m.read_error }) : (m.code || "–"))
        )
      );
      const byMail = Object.fromEntries(mails.mails.map((m) => [m.delivery_id, m.recipient]));
      const zamRows = mails.zams.map((z) =>
        el(
          "tr",
          { "data-zam": z.delivery_id },
          el("th", { scope: "row", text: `ZAM^${z.event}` }),
          el("td", { text: byMail[z.about] || z.about }),
          el("td", {}, statusBadge(z.status)),
          el("td", { class: "num", text: num(z.attempts) }),
          el("td", { text: z.control_id || "–" }),
          el("td", { text: z.delivered_at ? when(z.delivered_at) : "–" }),
          el("td", {}, z.last_error ? el("span", { class: "error", text: z.last_error }) : "–")
        )
      );
      mssante.replaceChildren(
        el("h2", { id: "mssante-h", text: L("mssante_h") }),
        el("p", { class: "sub", text: L("mssante_note") }),
        table("mail-table", null, [L("mail_recipient"), L("mail_state"), L("sent_at"), L("notice_at"), L("read_at"), L("server_words")], rows),
        el("h3", { text: L("zams_h") }),
        zamRows.length
          ? table("zam-table", null, [L("zam_event"), L("zam_about"), L("status"), L("attempts"), L("control_id"), L("delivered_at"), L("last_error")], zamRows)
          : el("p", { class: "notice", text: L("no_zams") })
      );
    }

    async function refresh() {
      const [m, t, x] = await Promise.all([api("GET", `${MESSAGES}/${id}`), api("GET", TIMELINE(id)), api("GET", `${MESSAGES}/${id}/mssante`)]);
      const fresh = JSON.stringify([m, t, x]);
      if (fresh === shown) return;
      // Redraw only on change, and give focus back to the control that had it.
      const focused = document.activeElement && document.activeElement.id;
      shown = fresh;
      detail = m;
      mails = x;
      events = Array.isArray(t) ? t : t.events || [];
      render();
      if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    }

    async function tick() {
      try {
        await refresh();
      } catch (error) {
        if (error.status === 401) return;
        if (error.status === 404) {
          page.replaceChildren(el("p", { class: "error", text: `${L("no_such_message")} ${id}` }));
          return;
        }
        report(status, `${L("update_failed")} (${error.message})`, true);
      }
      window.setTimeout(tick, POLL_MS);
    }
    await tick();
  }

  // --- dead letters ---------------------------------------------------------------------

  async function deadLettersPage() {
    const operator = isOperator();
    const query = new URLSearchParams(window.location.search);
    const recipient = el("select", { id: "dl-recipient", name: "recipient" }, el("option", { value: "", text: L("all_recipients") }));
    const filter = el("form", { class: "inline", id: "dl-filter" }, el("label", { for: "dl-recipient" }, L("recipient"), recipient), el("button", { type: "submit", text: L("show") }));
    const status = el("p", { id: "action-status", role: "status", tabindex: -1 });
    const retry = el("button", { type: "button", id: "retry-selected", disabled: true, text: L("retry_selected") });
    const discard = el("button", { type: "button", id: "discard-selected", disabled: true, text: L("discard_selected") });
    const toolbar = operator ? el("div", { class: "toolbar" }, retry, discard) : el("p", { class: "notice", text: L("dead_letters_operator") });
    const region = el("div", { id: "content" });
    const more = el("button", { type: "button", id: "more", hidden: true, text: L("older") });
    page.replaceChildren(filter, toolbar, status, region, more);

    try {
      const data = await api("GET", "/api/partners");
      for (const p of data.partners.filter((p) => p.endpoint)) {
        recipient.append(el("option", { value: p.id, selected: p.id === query.get("recipient"), text: `${p.name} (${p.id})` }));
      }
    } catch (error) {
      report(status, error.message, true);
    }

    let items = [];
    let cursor = null;

    function selected() {
      return [...region.querySelectorAll("input.pick:checked")].map((box) => box.value);
    }

    function update() {
      const n = selected().length;
      retry.disabled = discard.disabled = n === 0;
      retry.textContent = n ? `${L("retry_selected")} (${n})` : L("retry_selected");
      discard.textContent = n ? `${L("discard_selected")} (${n})` : L("discard_selected");
    }

    function render() {
      if (!items.length) {
        region.replaceChildren(el("p", { class: "notice", id: "no-dead-letters", text: L("no_dead_letters") }));
        update();
        return;
      }
      const headers = [L("failed_at"), L("recipient"), L("control_id"), L("message_type"), L("sender"), L("status"), L("attempts"), L("ack"), L("last_error")];
      let all = null;
      if (operator) {
        all = el("input", { type: "checkbox", id: "pick-all", "aria-label": L("select_all") });
        all.addEventListener("change", () => {
          for (const box of region.querySelectorAll("input.pick")) box.checked = all.checked;
          update();
        });
      }
      const head = el("tr", {}, operator ? el("th", { scope: "col" }, all) : null, headers.map((h) => el("th", { scope: "col", text: h })));
      const rows = items.map((d) => {
        const pick = operator ? el("td", {}, el("input", { type: "checkbox", class: "pick", value: d.id, id: `pick-${d.id}`, "aria-label": `${L("select")} ${d.control_id} → ${d.recipient}` })) : null;
        return el(
          "tr",
          { "data-delivery": d.id, "data-control-id": d.control_id },
          pick,
          el("td", { text: when(d.failed_at) }),
          el("td", { text: d.recipient }),
          el("td", {}, el("a", { href: `/console/messages/${d.message_id}`, text: d.control_id || d.message_id })),
          el("td", { text: d.message_type }),
          el("td", { text: d.sender || L("unknown_sender") }),
          el("td", {}, statusBadge(d.status)),
          el("td", { class: "num", text: num(d.attempts) }),
          el("td", { text: d.ack_code || "–" }),
          el("td", {}, d.last_error ? el("span", { class: "error", text: d.last_error }) : "–")
        );
      });
      region.replaceChildren(el("table", { id: "dead-letters" }, el("caption", { text: L("dead-letters") }), el("thead", {}, head), el("tbody", {}, rows)));
      for (const box of region.querySelectorAll("input.pick")) box.addEventListener("change", update);
      update();
    }

    async function load(append) {
      const params = new URLSearchParams();
      if (recipient.value) params.set("recipient", recipient.value);
      if (append && cursor) params.set("before", cursor);
      try {
        const data = await api("GET", `/api/dead-letters?${params}`);
        items = append ? items.concat(data.dead_letters) : data.dead_letters;
        cursor = data.next;
        more.hidden = !cursor;
        render();
      } catch (error) {
        report(status, error.message, true);
      }
    }

    async function act(action) {
      const ids = selected();
      if (!ids.length) return;
      const question = `${action === "retry" ? L("retry_confirm") : L("discard_confirm")} (${ids.length})`;
      const answer = await askDialog(question, { reason: "required" });
      if (answer === null) return;
      try {
        const done = await api("POST", `/api/dead-letters/${action}`, { delivery_ids: ids, reason: answer.reason });
        let text = `${action === "retry" ? L("retried_done") : L("discarded_done")}: ${num(done.changed)}`;
        if (done.skipped.length) text += ` · ${L("skipped")}: ${done.skipped.join("; ")}`;
        report(status, text);
        await load(false);
      } catch (error) {
        report(status, `${L("action_failed")} ${error.message}`, true);
      }
      // The buttons are disabled again (nothing selected): focus goes to the outcome.
      status.focus();
    }

    filter.addEventListener("submit", (event) => {
      event.preventDefault();
      const search = recipient.value ? `?recipient=${encodeURIComponent(recipient.value)}` : "";
      window.history.replaceState(null, "", `/console/dead-letters${search}`);
      load(false);
    });
    retry.addEventListener("click", () => act("retry"));
    discard.addEventListener("click", () => act("discard"));
    more.addEventListener("click", () => load(true));
    await load(false);
  }

  pages.messages = messagesPage;
  pages.message = messagePage;
  pages["dead-letters"] = deadLettersPage;
})();
