// Keeps the "N firing" alert badges current over ws/alerts/ (dashboard/alerts/websockets.py).
// A badge without a cluster (data-alerts-cluster; data-cluster marks the overview's
// cards) counts every alert; one with a cluster and subjects (the entity page's queue,
// topic or group) counts only those. Text only, never HTML.
"use strict";
(function () {
  const badges = Array.from(document.querySelectorAll("[data-alerts-badge]"));
  if (!badges.length || !window.mqboardLive) return;
  const cluster = badges[0].dataset.alertsCluster || "";
  let subjects = [];
  try { subjects = JSON.parse(badges[0].dataset.subjects || "[]"); } catch (err) { subjects = []; }
  const firing = {};  // subject -> firing count on this cluster

  function show(count) {
    badges.forEach(function (el) {
      el.dataset.firing = String(count);
      const link = el.querySelector("[data-field=alerts-firing]");
      const badge = link.querySelector(".badge");
      badge.textContent = window.MQB.fmt.count(count) + " firing";
      link.hidden = count <= 0;
    });
  }
  function takeSubjects(list) {
    (list || []).forEach(function (s) {
      if (s.cluster === cluster && subjects.indexOf(s.subject) >= 0) firing[s.subject] = s.firing;
    });
    let sum = 0;
    subjects.forEach(function (s) { sum += firing[s] || 0; });
    return sum;
  }
  function apply(msg) {
    if (msg.type !== "alerts.counts" && msg.type !== "alerts.changed") return;
    show(cluster ? takeSubjects(msg.subjects) : msg.counts.firing);
    if (msg.type === "alerts.changed" && !msg.complete) live.send({type: "counts"});
  }
  let path = "/ws/alerts/";
  if (cluster) {
    const query = new URLSearchParams();
    query.append("cluster", cluster);
    subjects.forEach(function (s) { query.append("subject", s); });
    path += "?" + query.toString();
  }
  const live = window.mqboardLive(path, apply, function (state) {
    badges.forEach(function (el) { el.dataset.live = state; });
  });
})();
