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
  const states = {
    queued: "Queued: waiting for a worker",
    running: "Running",
    paused: "Paused",
    cancelled: "Cancelled",
    done: "Done",
    failed: "Failed",
  };
  let job = JSON.parse(document.getElementById("job-data").textContent);

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function setText(name, value) { const el = field(name); if (el) el.textContent = value; }

  function render() {
    root.dataset.state = job.state;
    setText("state", states[job.state] || job.state);
    setText("done", String(job.done));
    setText("total", job.total === null ? "(counted when it starts)" : String(job.total));
    setText("failed", String(job.failed));
    setText("rate", job.rate === null || job.state !== "running" ? "–" : Math.round(job.rate) + " msg/s");
    if (job.total !== null) {
      bar.max = Math.max(job.total, 1);
      bar.value = job.total === 0 ? 1 : job.done;
      bar.removeAttribute("aria-busy");
    }
    const verdict = field("verdict");
    verdict.hidden = !job.verdict;
    verdict.textContent = job.verdict || "";
    const at = field("progress_at");
    if (job.progress_at) {
      at.setAttribute("datetime", job.progress_at);
      at.textContent = new Date(job.progress_at).toLocaleTimeString();
    }
    root.querySelectorAll("form[data-when]").forEach(function (form) {
      form.hidden = form.dataset.when.split(" ").indexOf(job.state) < 0;
    });
    tick();
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

  window.mqboardLive("/ws/jobs/" + encodeURIComponent(root.dataset.jobId) + "/", function (msg) {
    if (msg.type === "job.progress" && msg.job && msg.job.id === job.id) {
      job = msg.job;
      render();
    }
  }, function (state) {
    stateLabel.dataset.state = state;
    stateLabel.textContent = labels[state] || state;
  });
  render();
  setInterval(tick, 1000);
})();
