// Dry run of a bulk requeue: the schedule form shows the fields of the chosen "when"
// and says in words what it will do ("first at …, last due about …").
// Nothing here reads broker data; text goes in with textContent.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("schedule");
  const plan = document.getElementById("schedule-plan");
  if (!form || !plan) return;
  const count = Number(form.getAttribute("data-count")) || 0;
  const number = (name, fallback) => {
    const input = form.elements.namedItem(name);
    const value = input && input.value.trim() !== "" ? Number(input.value) : fallback;
    return Number.isFinite(value) ? value : NaN;
  };
  // The dashboard's one date format (ui.js), in the browser's time zone as the page shows times.
  const text = (d) => window.MQB.fmt.local(d);
  const span = (seconds) => {
    if (seconds < 120) return `${Math.round(seconds)} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} days`;
  };
  const letters = `${count} letter${count === 1 ? "" : "s"}`;

  // Seconds from the first letter to the last: gaps min(cap, base * factor^n), n = 0 .. count-2.
  const spread = (base, factor, cap) => {
    let total = 0;
    let gap = base;
    for (let n = 0; n < count - 1; n += 1) {
      if (gap >= cap) return total + cap * (count - 1 - n);
      total += gap;
      gap = Math.min(cap, gap * factor);
    }
    return total;
  };

  const describe = () => {
    const mode = (form.querySelector("input[name=mode]:checked") || {}).value;
    form.querySelectorAll("[data-mode]").forEach((row) => {
      row.hidden = !row.getAttribute("data-mode").split(" ").includes(mode);
    });
    const now = Date.now();
    if (mode === "at") {
      const input = form.elements.namedItem("at");
      const at = input && input.value ? new Date(input.value) : null;
      plan.textContent = at && !Number.isNaN(at.getTime())
        ? `All ${letters} due at ${text(at)}.`
        : "Choose the time.";
      return;
    }
    const delay = number("delay_minutes", 0) * 60;
    if (!(delay >= 0)) { plan.textContent = "The delay must be a number of minutes."; return; }
    const first = new Date(now + delay * 1000);
    if (mode === "after") {
      plan.textContent = `All ${letters} due at about ${text(first)}.`;
      return;
    }
    const base = number("base", NaN);
    const factor = number("factor", 2);
    const cap = number("cap", 3600);
    const jitter = number("jitter", 0);
    if (!(base > 0) || !(factor >= 1) || !(cap >= base) || !(jitter >= 0 && jitter <= 1)) {
      plan.textContent = "Base more than 0 s, factor at least 1, cap at least the base, jitter 0 to 1.";
      return;
    }
    const total = spread(base, factor, cap);
    const last = new Date(first.getTime() + total * 1000);
    // The wording of schedules and retry rules: "first gap 1 min, ×2 each step, at most 1 h, ±10% jitter".
    let words = `First at ${text(first)}; first gap ${span(base)}`;
    if (count > 2 && factor > 1) words += `, ×${factor} each step, at most ${span(cap)}`;
    if (jitter > 0) words += `, ±${Math.round(jitter * 100)}% jitter`;
    words += `; the last of ${letters} due about ${text(last)} (${span(total)} after the first).`;
    plan.textContent = words;
  };
  form.addEventListener("input", describe);
  form.addEventListener("change", describe);
  describe();
});
