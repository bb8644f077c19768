// The Alerts page, live: on every change pushed over ws/alerts/ the rows are read again
// from /api/alerts/shown (the page's own filters) and rebuilt. Text only: rule names and
// entities come from users and brokers and are never inserted as HTML.
"use strict";
(function () {
  const table = document.getElementById("alerts-table");
  if (!table || !window.mqboardLive) return;
  const body = document.getElementById("alerts-rows");
  const region = document.getElementById("alerts-region");
  const empty = document.getElementById("alerts-empty");
  const stateLabel = document.getElementById("live-state");
  const ackForm = document.getElementById("alert-ack-form");
  const operator = table.dataset.operator === "1";
  const labels = {
    connecting: "Live updates: connecting…",
    open: "Live updates: on",
    closed: "Live updates: disconnected, retrying…",
    unauthenticated: "Live updates: your session has ended, log in again",
    refused: "Live updates: refused by the server",
  };
  let timer = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function oneTimeKey() {
    const bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode.apply(null, bytes))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function stateCell(a) {
    const td = el("td", "alert-state");
    td.append(window.MQB.badge("alert_" + a.state));
    if (a.silenced) td.append(" ", window.MQB.badge("alert_silenced"));
    if (a.acknowledged_at) {
      td.append(" ", window.MQB.badge("alert_acknowledged"));
      const ack = el("small", "muted ack", "by " + (a.acknowledged_by || "someone") + " ");
      ack.append(window.MQB.time(a.acknowledged_at, true));
      td.append(ack);
    }
    return td;
  }
  function row(a) {
    const tr = el("tr");
    tr.id = "alert-" + a.id;
    tr.dataset.alert = String(a.id);
    tr.dataset.state = a.state;
    if (a.silenced) tr.dataset.silenced = "1";
    tr.append(stateCell(a));
    const rule = el("td", "name");
    if (a.rule_id !== null) {
      const link = el("a", "", a.rule);
      link.href = table.dataset.rulesUrl + a.rule_id + "/";
      rule.append(link);
    } else {
      rule.append(a.rule);
    }
    rule.append(el("small", "muted kind", a.kind));
    tr.append(rule, el("td", "", a.cluster), el("td", "name mono", a.entity));
    const value = el("td", "num");
    if (a.value === null) value.append(el("span", "muted", "unknown"));
    else value.textContent = String(parseFloat(a.value.toFixed(2)));
    tr.append(value);
    const since = el("td");
    since.append(window.MQB.time(a.fired_at || a.started_at, true));
    const resolved = el("td");
    if (a.resolved_at) resolved.append(window.MQB.time(a.resolved_at, true));
    else resolved.append(el("span", "muted", "–"));
    tr.append(since, resolved);
    if (operator) {
      const buttons = el("td", "alert-buttons");
      if (a.state !== "resolved") {
        const silence = el("a", "btn", "Silence");
        silence.dataset.action = "silence";
        silence.href = table.dataset.silenceUrl + "?alert=" + a.id;
        buttons.append(silence);
        if (!a.acknowledged_at && ackForm) {
          const form = ackForm.content.firstElementChild.cloneNode(true);
          form.action = table.dataset.alertsUrl + a.id + "/acknowledge";
          form.querySelector("input[name=idempotency_key]").value = oneTimeKey();
          buttons.append(" ", form);
        }
      }
      tr.append(buttons);
    }
    return tr;
  }
  function render(alerts) {
    body.replaceChildren.apply(body, alerts.map(row));
    region.hidden = alerts.length === 0;
    empty.hidden = alerts.length !== 0;
    table.dataset.loaded = String(Number(table.dataset.loaded || "0") + 1);
  }
  function refresh() {
    const query = new URLSearchParams();
    if (table.dataset.stateFilter) query.set("state", table.dataset.stateFilter);
    if (table.dataset.clusterFilter) query.set("cluster", table.dataset.clusterFilter);
    fetch(table.dataset.shownUrl + "?" + query.toString(), {credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error("alerts: HTTP " + response.status);
        return response.json();
      })
      .then(function (data) { render(data.alerts); })
      .catch(function (err) { console.error(err); });
  }
  // Several changes close together are read once.
  function soon() {
    if (timer !== null) return;
    timer = window.setTimeout(function () { timer = null; refresh(); }, 250);
  }
  window.mqboardLive("/ws/alerts/", function (msg) {
    if (msg.type === "alerts.changed") soon();
    // Counts come on every (re)connect: changes since the page was drawn may be missed.
    else if (msg.type === "alerts.counts") soon();
  }, function (state) {
    stateLabel.dataset.state = state;
    stateLabel.textContent = labels[state] || state;
  });
})();
