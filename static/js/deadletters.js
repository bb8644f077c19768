// Dead-letter pages: ask before a form that changes what the collector captures.
// Broker names reach the question only through the data-confirm attribute the
// template escaped; nothing here builds HTML.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
});
