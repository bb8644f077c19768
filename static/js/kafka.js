// Small helpers for the Kafka pages: show only the inputs the chosen start
// (or reset target) needs, and confirm a purge. No broker data is touched here.
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
  const purge = document.getElementById("purge-form");
  if (purge) {
    purge.addEventListener("submit", function (event) {
      if (!window.confirm("Delete these records for good?")) event.preventDefault();
    });
  }
})();
