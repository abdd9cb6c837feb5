// carebroker console: the alerts page (alerts now, what operators did, history).
"use strict";

(function () {
  const { L, el, api, when, askDialog, isOperator, page, pages } = window.carebroker;

  const REFRESH_MS = 10000;
  const SILENCE_HOURS = [1, 4, 24, 72, 168];

  function alertName(name) {
    return L(`alert_${name}`);
  }

  function who(actor) {
    return actor && actor.startsWith("user:") ? actor.slice(5) : actor;
  }

  function severity(level) {
    return el("span", { class: `severity severity-${level}`, text: L(`severity_${level}`) });
  }

  function alertsPage() {
    const status = el("p", { id: "action-status", role: "status" });
    const firing = el("section", { id: "firing", "aria-labelledby": "firing-h" });
    const quiet = el("section", { id: "silences", "aria-labelledby": "silences-h" });
    const past = el("section", { id: "history", "aria-labelledby": "history-h" });
    page.replaceChildren(status, firing, quiet, past);
    let shown = "";

    function report(text, failed) {
      status.textContent = text;
      status.classList.toggle("error", Boolean(failed));
    }

    async function act(path, payload, done) {
      try {
        await api("POST", path, payload);
        report(done);
        await load(true);
      } catch (error) {
        report(`${L("action_failed")} ${error.message}`, true);
      }
    }

    async function acknowledge(a) {
      const answer = await askDialog(`${L("acknowledge_confirm")} ${alertName(a.name)}: ${a.subject}`, { reason: "required" });
      if (answer === null) return;
      await act("/api/alerts/acknowledge", { name: a.name, subject: a.subject, reason: answer.reason }, `${L("acknowledged_done")}: ${a.subject}`);
    }

    async function silence(a) {
      const hours = el("select", { name: "hours" }, SILENCE_HOURS.map((h) => el("option", { value: h, selected: h === 4, text: `${h} ${L("hours")}` })));
      const answer = await askDialog(`${L("silence_confirm")} ${alertName(a.name)}: ${a.subject}`, {
        reason: "required",
        fields: [{ name: "hours", label: L("silence_for"), node: hours }],
      });
      if (answer === null) return;
      await act("/api/alerts/silence", { name: a.name, subject: a.subject, reason: answer.reason, hours: Number(answer.hours) }, `${L("silenced_done")}: ${a.subject}`);
    }

    async function unsilence(s) {
      const answer = await askDialog(`${L("unsilence_confirm")} ${alertName(s.name)}: ${s.subject}`, { reason: "optional" });
      if (answer === null) return;
      await act("/api/alerts/unsilence", { name: s.name, subject: s.subject, reason: answer.reason }, `${L("unsilenced_done")}: ${s.subject}`);
    }

    function button(id, text, label, handler) {
      const node = el("button", { type: "button", id, "aria-label": label, text });
      node.addEventListener("click", handler);
      return node;
    }

    function marks(a) {
      const out = [];
      if (a.acknowledged) out.push(el("div", { class: "mark acknowledged", text: `${L("acknowledged_by")} ${who(a.acknowledged.by)} · ${when(a.acknowledged.at)} · ${a.acknowledged.reason}` }));
      if (a.silenced) out.push(el("div", { class: "mark silenced", text: `${L("silenced_until")} ${when(a.silenced.until)} (${who(a.silenced.by)}) · ${a.silenced.reason}` }));
      return out.length ? out : [el("span", { class: "sub", text: L("not_acknowledged") })];
    }

    function render(data) {
      const key = (a) => `${a.name}-${a.subject}`.replace(/[^A-Za-z0-9_-]/g, "_");
      const rows = data.alerts.map((a) => {
        const actions = [];
        if (isOperator()) {
          if (!a.acknowledged) actions.push(button(`ack-${key(a)}`, L("acknowledge"), `${L("acknowledge")}: ${a.subject}`, () => acknowledge(a)));
          actions.push(button(`silence-${key(a)}`, L("silence"), `${L("silence")}: ${a.subject}`, () => silence(a)));
        }
        return el(
          "tr",
          { "data-alert": a.name, "data-subject": a.subject, class: a.silenced ? "silenced" : null },
          el("td", {}, severity(a.severity)),
          el("th", { scope: "row" }, alertName(a.name), el("div", { class: "sub", text: a.subject })),
          el("td", { text: a.summary }),
          el("td", { text: a.since ? when(a.since) : L("not_recorded_yet") }),
          el("td", { "data-field": "state" }, marks(a)),
          isOperator() ? el("td", { class: "row-actions" }, actions) : null
        );
      });
      const headers = [L("severity"), L("alert"), L("summary"), L("firing_since"), L("state")];
      if (isOperator()) headers.push(L("actions"));
      firing.replaceChildren(
        el("h2", { id: "firing-h", text: L("alerts_firing") }),
        el("p", { class: "sub", text: `${L("updated_at")} ${when(data.evaluated_at)}` }),
        rows.length
          ? el("table", { id: "alerts" }, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, rows))
          : el("p", { class: "notice", id: "no-alerts", text: L("no_alerts") })
      );
      quiet.replaceChildren(
        el("h2", { id: "silences-h", text: L("silences") }),
        data.silences.length
          ? el(
              "ul",
              { id: "silence-list" },
              data.silences.map((s) =>
                el(
                  "li",
                  { "data-alert": s.name, "data-subject": s.subject },
                  `${alertName(s.name)} · ${s.subject} · ${L("silenced_until")} ${when(s.until)} (${who(s.by)}: ${s.reason}) `,
                  isOperator() ? button(`unsilence-${key(s)}`, L("unsilence"), `${L("unsilence")}: ${s.subject}`, () => unsilence(s)) : null
                )
              )
            )
          : el("p", { class: "sub", text: L("no_silences") })
      );
      past.replaceChildren(
        el("h2", { id: "history-h", text: L("alert_history") }),
        data.history.length
          ? el(
              "table",
              { id: "alert-history" },
              el("thead", {}, el("tr", {}, [L("time"), L("alert"), L("subject"), L("change"), L("by"), L("reason")].map((h) => el("th", { scope: "col", text: h })))),
              el(
                "tbody",
                {},
                data.history.map((h) =>
                  el(
                    "tr",
                    { "data-change": h.change },
                    el("td", { text: when(h.occurred_at) }),
                    el("td", { text: alertName(h.alert) }),
                    el("td", { text: h.subject }),
                    el("td", { text: L(`change_${h.change}`) }),
                    el("td", { text: who(h.actor) }),
                    el("td", { text: h.reason || "" })
                  )
                )
              )
            )
          : el("p", { class: "sub", text: L("no_history") })
      );
    }

    async function load(force) {
      const data = await api("GET", "/api/alerts/state");
      // evaluated_at changes at every call: compare the rest to redraw only on change.
      const fresh = JSON.stringify({ ...data, evaluated_at: null });
      if (!force && fresh === shown) return;
      const focused = document.activeElement && document.activeElement.id;
      shown = fresh;
      render(data);
      if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    }

    async function tick() {
      try {
        await load(false);
      } catch (error) {
        if (error.status === 401) return;
        report(`${L("update_failed")} (${error.message})`, true);
      }
      window.setTimeout(tick, REFRESH_MS);
    }
    tick();
  }

  pages.alerts = alertsPage;
})();
