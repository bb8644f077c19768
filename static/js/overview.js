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
    if (!el) return;
    if (el.dataset.format === "count") el.textContent = window.MQB.fmt.count(value);
    else el.textContent = value === null || value === undefined ? "unknown" : String(value);
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
  function plural(n, word) { return window.MQB.fmt.count(n) + " " + word + (n === 1 ? "" : "s"); }
  // What needs attention, as the page writes it (overview/views.py attention_of).
  function attention(card, h) {
    const el = field(card, "attention");
    if (!el) return;
    const o = h.overview;
    const items = [];
    const manages = /^https?:\/\//.test(h.address || "");
    o.nodes.forEach(function (n) {
      (n.alarms || []).forEach(function (alarm) {
        const link = h.address.replace(/\/+$/, "") + "/#/nodes/" + encodeURIComponent(n.name);
        items.push([alarm + " alarm on " + n.name + ": publishers are blocked",
          manages ? [["node", link]] : []]);
      });
    });
    const pattern = el.dataset.topicUrl;
    const topics = (o.replication_topics || []).map(function (t) {
      return [t, pattern ? pattern.replace("__topic__", encodeURIComponent(t)) : ""];
    });
    if (o.offline_partitions) items.push([plural(o.offline_partitions, "offline partition"), topics]);
    if (o.under_replicated_partitions) {
      items.push([plural(o.under_replicated_partitions, "under-replicated partition"), topics]);
    }
    el.replaceChildren();
    if (!items.length) { el.textContent = "nothing"; return; }
    items.forEach(function (item) {
      const span = document.createElement("span");
      span.className = "attention";
      span.append(document.createTextNode(item[0]));
      item[1].forEach(function (link, i) {
        span.append(document.createTextNode(i === 0 ? ": " : ", "));
        if (link[1]) {
          const a = document.createElement("a");
          a.href = link[1];
          a.textContent = link[0];
          span.append(a);
        } else {
          span.append(document.createTextNode(link[0]));
        }
      });
      el.append(span);
    });
  }
  // A card whose last check is older than its data-stale-after seconds says "Stale"
  // (ui.js keeps the check's relative age current); looked at every second, so a
  // collector that stopped is never shown as fresh.
  function markStale() {
    document.querySelectorAll("[data-cluster]").forEach(function (card) {
      const when = field(card, "checked_at").querySelector("time");
      const badge = field(card, "stale");
      if (!when || !badge) return;
      const age = Math.max(0, (Date.now() - Date.parse(when.getAttribute("datetime"))) / 1000);
      const stale = age > Number(card.dataset.staleAfter);
      card.dataset.stale = stale ? "true" : "false";
      badge.hidden = !stale;
    });
  }
  function apply(h) {
    const card = document.querySelector('[data-cluster="' + CSS.escape(h.slug) + '"]');
    if (!card) return;
    card.dataset.ok = h.ok ? "true" : "false";
    card.dataset.source = h.source || "live";
    const status = field(card, "status");
    const code = h.ok ? "ok" : "down";
    const text = h.ok ? "Healthy" : "Unavailable";
    const badge = status.querySelector(".badge");
    if (badge) window.MQB.setBadge(badge, code, text);
    else status.replaceChildren(window.MQB.badge(code, text));
    const reason = field(card, "message");
    reason.hidden = h.ok;
    reason.textContent = h.ok ? "" : h.message;
    if (!h.ok && h.down_since) {
      const since = document.createElement("span");
      since.className = "since";
      since.append(" (unavailable since ", window.MQB.time(h.down_since), ")");
      reason.append(since);
    }
    const checked = field(card, "checked_at");
    const never = field(card, "never");
    if (never) never.remove();
    const when = checked.querySelector("time");
    if (when) window.MQB.renderTime(when, h.checked_at);
    else checked.querySelector(".when").replaceWith(window.MQB.time(h.checked_at, true));
    markStale();
    const o = h.overview;
    if (!o) return;  // keep the last known numbers; the status says they are stale
    ["version", "cluster_name", "queues", "exchanges", "consumers", "connections", "messages",
     "topics", "partitions", "consumer_groups"].forEach(function (k) { setText(card, k, o[k]); });
    setText(card, "nodes", nodesText(o.nodes));
    attention(card, h);
    const dlqs = field(card, "dead_letters");
    dlqs.replaceChildren();
    if (!h.dead_letters.length) dlqs.textContent = "no dead-letter queues";
    h.dead_letters.forEach(function (d) {
      const span = document.createElement("span");
      span.className = "dlq";
      const label = d.name + (d.vhost && d.vhost !== "/" ? " (" + d.vhost + ")" : "") + ": ";
      span.append(document.createTextNode(label));
      const depth = document.createElement("b");
      depth.textContent = window.MQB.fmt.count(d.depth);
      span.append(depth);
      dlqs.append(span);
    });
  }
  markStale();
  window.setInterval(markStale, 1000);
  window.mqboardLive("/ws/overview/", function (msg) {
    if (msg.type === "cluster.health") apply(msg.health);
  }, setState);
})();
