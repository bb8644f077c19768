// Live metrics pages: each [data-live-cluster] element (a card on /live/, the status line of a
// cluster's page) follows its cluster's websocket, so its numbers and "last sampled" time stay
// as fresh as the collector's samples. Text only: messages come from brokers.
"use strict";
(function () {
  function statusLine(box, msg) {
    const line = document.createElement("span");
    line.className = "mqb-status";
    line.dataset.role = "cluster-status";
    const badge = window.MQB.badge(msg.ok ? "ok" : "down", msg.ok ? "Sampled" : "Unavailable");
    const detail = document.createElement("span");
    if (msg.ok) {
      detail.className = "mqb-muted";
      detail.append("every " + window.MQB.fmt.duration(msg.interval) + ", last ");
      if (msg.sampled_at) detail.append(window.MQB.time(msg.sampled_at, true));
      else detail.append("never");
      if (msg.seconds !== null && msg.seconds !== undefined) {
        detail.append(", took " + window.MQB.fmt.duration(msg.seconds));
      }
    } else {
      detail.className = "mqb-down";
      detail.append("since ");
      if (msg.down_since) detail.append(window.MQB.time(msg.down_since, true));
      else detail.append("unknown");
      detail.append(msg.message ? ": " + msg.message : "");
    }
    line.append(badge, " ", detail);
    const old = box.querySelector('[data-role="cluster-status"]');
    if (old) old.replaceWith(line); else box.append(line);
  }

  function totals(box, values) {
    const list = box.querySelector('[data-role="totals"]');
    if (!list || !values) return;
    list.hidden = false;
    list.querySelectorAll("[data-field]").forEach(function (dd) {
      const format = window.MQB.fmt[dd.dataset.format] || window.MQB.fmt.count;
      const value = values[dd.dataset.field];
      dd.textContent = format(value === undefined ? null : value);
    });
  }

  function follow(box) {
    const path = "/ws/metrics/cluster/?" + new URLSearchParams({ cluster: box.dataset.cluster }).toString();
    window.mqboardLive(path, function (msg) {
      if (msg.type === "metrics.cluster") {
        statusLine(box, msg);
        totals(box, msg.values);
      } else if (msg.type === "metrics.status") {
        statusLine(box, msg);
      } else if (msg.type === "metrics.hello" && msg.status && msg.status.ok !== undefined && msg.status.ok !== null) {
        statusLine(box, msg.status);
      }
      box.dataset.live = "open";
    }, function (state) { box.dataset.state = state; });
  }

  document.querySelectorAll("[data-live-cluster][data-cluster]").forEach(follow);
})();
