// Inbox and detail pages: ask before a requeue, discard or bulk action.
// Questions come from data-confirm / data-confirm-button attributes the
// template escaped; nothing here builds HTML from broker data.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const button = event.submitter;
  const question =
    (button && button.dataset && button.dataset.confirmButton) || form.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
