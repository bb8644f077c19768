// Dead-letter inbox: a "select all" box over the letters' checkboxes.
// Confirmations are data-confirm attributes on the forms and buttons, asked by ui.js;
// a bulk requeue is confirmed on its dry-run page instead.
// Nothing here reads broker data or builds HTML from it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("letters-form");
  const head = form && form.querySelector("thead th .visually-hidden");
  if (!head) return;
  const boxes = () => Array.from(form.querySelectorAll("tbody input[name=ids]"));
  if (!boxes().length) return;
  const all = document.createElement("input");
  all.type = "checkbox";
  all.id = "select-all-letters";
  all.setAttribute("aria-label", "select every letter on this page");
  head.after(all);
  all.addEventListener("change", () => {
    boxes().forEach((box) => { box.checked = all.checked; });
  });
  form.addEventListener("change", (event) => {
    if (event.target === all) return;
    const list = boxes();
    const ticked = list.filter((box) => box.checked).length;
    all.checked = ticked === list.length;
    all.indeterminate = ticked > 0 && ticked < list.length;
  });
});
