// Small helpers for the Kafka pages: show only the inputs the chosen start
// (or reset target) needs. Confirmations are data-confirm forms (ui.js asks).
// No broker data is touched here.
"use strict";
(function () {
  function toggle(select, attribute) {
    if (!select) return;
    function apply() {
      document.querySelectorAll("[" + attribute + "]").forEach(function (el) {
        el.hidden = el.getAttribute(attribute) !== select.value;
      });
    }
    select.addEventListener("change", apply);
    apply();
  }
  toggle(document.getElementById("start"), "data-when");
  toggle(document.getElementById("reset-to"), "data-when-reset");
})();
