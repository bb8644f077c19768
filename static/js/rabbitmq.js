// RabbitMQ pages: small conveniences only; every check is repeated on the server.
"use strict";

(function () {
  // A protected cluster's purge button stays disabled until the queue name is typed exactly.
  document.querySelectorAll("form.purge-form").forEach(function (form) {
    const expected = form.dataset.expected;
    const input = form.querySelector("input[name=confirm_name]");
    const button = form.querySelector("button[type=submit]");
    if (!expected || !input || !button) return;
    const sync = function () { button.disabled = input.value !== expected; };
    input.addEventListener("input", sync);
    sync();
  });
})();
