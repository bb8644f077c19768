// Keeps the overview cards fresh from the collector's pushes. Text only: names
// and messages come from brokers and are never inserted as HTML.
"use strict";
(function () {
  const stateLabel = document.getElementById("live-state");
  const labels = {
    connecting: "Live updates: connecting…",
    open: "Live updates: on",
    closed: "Live updates: disconnected, retrying…",
    unauthenticated: "Live updates: your session has ended, log in again",
    refused: "Live updates: refused by the server",
  };
  function setState(state) {
    stateLabel.dataset.state = state;
    stateLabel.textContent = labels[state] || state;
  }
  function field(card, name) { return card.querySelector('[data-field="' + name + '"]'); }
  function setText(card, name, value) {
    const el = field(card, name);
    if (el) el.textContent = value === null || value === undefined ? "unknown" : String(value);
  }
  function nodesText(nodes) {
    if (!nodes.length) return "none";
    return nodes.map(function (n) {
      let s = n.name;
      if (n.host) s += " (" + n.host + ":" + n.port + ")";
      if (n.is_controller) s += " controller";
      if (!n.running) s += " [down]";
      return s;
    }).join(", ");
  }
  function apply(h) {
    const card = document.querySelector('[data-cluster="' + CSS.escape(h.slug) + '"]');
    if (!card) return;
    card.dataset.ok = h.ok ? "true" : "false";
    const status = field(card, "status");
    status.textContent = h.ok ? "healthy" : "unavailable";
    status.className = "status " + (h.ok ? "ok" : "down");
    const reason = field(card, "message");
    reason.hidden = h.ok;
    reason.textContent = h.ok ? "" : h.message + (h.down_since ? " (unavailable since " + new Date(h.down_since).toLocaleString() + ")" : "");
    const checked = field(card, "checked_at");
    checked.setAttribute("datetime", h.checked_at);
    checked.textContent = new Date(h.checked_at).toLocaleString();
    const o = h.overview;
    if (!o) return;  // keep the last known numbers; the status says they are stale
    ["version", "cluster_name", "queues", "exchanges", "consumers", "connections", "messages",
     "topics", "partitions", "consumer_groups"].forEach(function (k) { setText(card, k, o[k]); });
    setText(card, "nodes", nodesText(o.nodes));
    const dlqs = field(card, "dead_letters");
    dlqs.replaceChildren();
    if (!h.dead_letters.length) dlqs.textContent = "no dead-letter queues";
    h.dead_letters.forEach(function (d) {
      const span = document.createElement("span");
      span.className = "dlq";
      const label = d.name + (d.vhost && d.vhost !== "/" ? " (" + d.vhost + ")" : "") + ": ";
      span.append(document.createTextNode(label));
      const depth = document.createElement("b");
      depth.textContent = d.depth === null ? "unknown" : String(d.depth);
      span.append(depth);
      dlqs.append(span);
    });
  }
  function tick() {
    document.querySelectorAll("[data-age-of]").forEach(function (el) {
      const t = el.parentElement.querySelector("time");
      if (t) el.textContent = "(" + window.mqboardAge(t.getAttribute("datetime")) + ")";
    });
  }
  window.mqboardLive("/ws/overview/", function (msg) {
    if (msg.type === "cluster.health") apply(msg.health);
  }, setState);
  tick();
  setInterval(tick, 1000);
})();
