// A job's page: progress, state and verdict pushed by the worker over the
// websocket. Text only (textContent): queue names come from brokers.
"use strict";
(function () {
  const root = document.getElementById("job");
  if (!root) return;
  const stateLabel = document.getElementById("live-state");
  const bar = document.getElementById("job-progress");
  const staleAfter = parseFloat(root.dataset.staleAfter || "30");
  const labels = {
    connecting: "Live updates: connecting…",
    open: "Live updates: on",
    closed: "Live updates: disconnected, retrying…",
    unauthenticated: "Live updates: your session has ended, log in again",
    refused: "Live updates: refused by the server",
  };
  const fmt = window.MQB.fmt;
  const FINAL = ["done", "failed", "cancelled"];
  let job = JSON.parse(document.getElementById("job-data").textContent);

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function setText(name, value) { const el = field(name); if (el) el.textContent = value; }

  function render() {
    root.dataset.state = job.state;
    window.MQB.setBadge(field("state"), job.state);
    setText("done", fmt.count(job.done));
    setText("total", job.total === null ? "(counted when it starts)" : fmt.count(job.total));
    setText("failed", fmt.count(job.failed));
    const finished = FINAL.indexOf(job.state) >= 0;
    setText("rate-label", finished ? "Average rate" : "Rate");
    setText("rate", job.state === "running" ? fmt.rate(job.rate) : finished ? fmt.rate(averageRate(job)) : "–");
    renderCounts(job.counts || {});
    if (job.total !== null) {
      bar.max = Math.max(job.total, 1);
      bar.value = job.total === 0 ? 1 : job.done;
      bar.removeAttribute("aria-busy");
    }
    const verdict = field("verdict");
    verdict.hidden = !job.verdict;
    verdict.textContent = job.verdict || "";
    const at = field("progress_at");
    if (job.progress_at) window.MQB.renderTime(at, job.progress_at);
    root.querySelectorAll("form[data-when]").forEach(function (form) {
      form.hidden = form.dataset.when.split(" ").indexOf(job.state) < 0;
    });
    tick();
  }

  // A finished job's rate over its whole run: done / (finished - started), or null.
  function averageRate(j) {
    if (!j.started_at || !j.finished_at) return null;
    const seconds = (Date.parse(j.finished_at) - Date.parse(j.started_at)) / 1000;
    return seconds > 0 ? j.done / seconds : null;
  }

  // A finished job gets no more pushes: say so and close the websocket.
  function finish() {
    stateLabel.dataset.state = "final";
    stateLabel.textContent = "The job has finished: this page no longer updates live.";
    if (live) { live.close(); live = null; }
  }

  // Counts read from what the job touched (a requeue: requeued, came back).
  function renderCounts(counts) {
    Object.keys(counts).forEach(function (name) {
      root.querySelectorAll('[data-count="' + name + '"]').forEach(function (el) {
        el.textContent = fmt.count(counts[name]);
      });
    });
    const back = document.getElementById("job-came-back");
    if (back && counts.came_back !== undefined) back.hidden = !counts.came_back;
  }

  // After the job ended, letters can still come back: read the counts again now and then.
  function refreshCounts() {
    if (FINAL.indexOf(job.state) < 0 || !job.counts || document.hidden) return;
    fetch(root.dataset.apiUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (fresh) {
        if (fresh && fresh.id === job.id) { job.counts = fresh.counts || {}; renderCounts(job.counts); }
      })
      .catch(function () { /* the next round tries again */ });
  }

  // A running job reports every half second; silence means the worker may be gone.
  function tick() {
    const stale = field("stale");
    const last = job.progress_at || job.started_at;
    const quiet = last ? (Date.now() - Date.parse(last)) / 1000 : 0;
    const stuck = job.state === "running" && quiet > staleAfter;
    stale.hidden = !stuck;
    stale.textContent = stuck ? "no report from the worker for " + window.mqboardAge(last).replace(" ago", "") + ": it may have stopped" : "";
  }

  let live = null;
  if (FINAL.indexOf(job.state) < 0) {
    live = window.mqboardLive("/ws/jobs/" + encodeURIComponent(root.dataset.jobId) + "/", function (msg) {
      if (msg.type === "job.progress" && msg.job && msg.job.id === job.id) {
        job = msg.job;
        render();
        if (FINAL.indexOf(job.state) >= 0) finish();
      }
    }, function (state) {
      if (stateLabel.dataset.state === "final") return;
      stateLabel.dataset.state = state;
      stateLabel.textContent = labels[state] || state;
    });
  }
  render();
  setInterval(tick, 1000);
  setInterval(refreshCounts, 15000);
})();
