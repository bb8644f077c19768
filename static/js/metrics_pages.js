// Times the server wrote as Unix seconds become local times with their age.
"use strict";
(function () {
  function show() {
    document.querySelectorAll("time.mqb-epoch[data-epoch]").forEach(function (el) {
      const epoch = parseFloat(el.dataset.epoch);
      if (!isFinite(epoch)) { el.textContent = "unknown"; return; }
      const iso = new Date(epoch * 1000).toISOString();
      el.setAttribute("datetime", iso);
      el.textContent = new Date(epoch * 1000).toLocaleTimeString() + " (" + window.mqboardAge(iso) + ")";
    });
  }
  if (!window.mqboardAge) {
    window.mqboardAge = function (iso) {
      const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
      if (seconds < 60) return seconds + " s ago";
      if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
      return Math.round(seconds / 3600) + " h ago";
    };
  }
  show();
  setInterval(show, 1000);
})();
