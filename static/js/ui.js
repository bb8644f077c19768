// One look for every page: status labels and badges, times, numbers with units.
// The label table comes from the server (dashboard/core/display.py) in #mqb-labels.
(function () {
  "use strict";
  var table = {};
  var node = document.getElementById("mqb-labels");
  if (node) { try { table = JSON.parse(node.textContent); } catch (e) { table = {}; } }

  function words(code) {
    var text = String(code === null || code === undefined ? "" : code).replace(/[_.]/g, " ").trim();
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  function label(code) { return table[code] ? table[code][0] : words(code); }
  function tone(code) { return table[code] ? table[code][1] : "muted"; }
  function badge(code, text) {
    var el = document.createElement("span");
    el.className = "badge badge-" + tone(code);
    el.dataset.status = code;
    el.textContent = text === undefined ? label(code) : text;
    return el;
  }
  // Turn an existing badge into the one for `code` (live updates).
  function setBadge(el, code, text) {
    el.className = "badge badge-" + tone(code);
    el.dataset.status = code;
    el.textContent = text === undefined ? label(code) : text;
  }

  function pad(n) { return String(n).padStart(2, "0"); }
  function toDate(value) {
    if (value instanceof Date) return value;
    if (typeof value === "number") return new Date(value < 1e11 ? value * 1000 : value);
    return new Date(value);
  }
  function utcText(d) {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }
  function localText(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function count(v) { return v === null || v === undefined || isNaN(v) ? "–" : Math.round(v).toLocaleString("en-US"); }
  function measure(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    var m = Math.abs(v), text;
    if (m >= 100 || v === 0) text = Math.round(v).toLocaleString("en-US");
    else text = String(parseFloat(v.toFixed(m >= 10 ? 1 : 2)));
    return text + (unit || "");
  }
  function rate(v) { return measure(v, "/s"); }
  function duration(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    if (s < 60) return measure(s, " s");
    var total = Math.round(s), min = Math.floor(total / 60), sec = total % 60;
    if (min < 60) return sec ? min + " min " + sec + " s" : min + " min";
    var h = Math.floor(min / 60); min = min % 60;
    if (h < 24) return min ? h + " h " + min + " min" : h + " h";
    var d = Math.floor(h / 24); h = h % 24;
    return h ? d + " d " + h + " h" : d + " d";
  }
  function size(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    var units = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? count(v) + " B" : measure(v, " " + units[i]);
  }
  function age(value) {
    var seconds = (Date.now() - toDate(value).getTime()) / 1000;
    if (seconds < 1) return "just now";
    return duration(Math.floor(seconds)) + " ago";
  }

  // <time class="when" datetime=…> -> local time, UTC on hover, and "(3 min ago)" with data-age.
  function renderTime(el, value) {
    var d = toDate(value === undefined ? el.getAttribute("datetime") : value);
    if (isNaN(d.getTime())) return;
    if (value !== undefined) el.setAttribute("datetime", d.toISOString());
    el.title = utcText(d);
    el.textContent = localText(d) + (el.hasAttribute("data-age") ? " (" + age(d) + ")" : "");
  }
  function upgradeTimes(root) {
    (root || document).querySelectorAll("time.when[datetime]").forEach(function (el) { renderTime(el); });
  }
  // A <time class="when"> for live updates.
  function time(value, withAge) {
    var el = document.createElement("time");
    el.className = "when";
    if (withAge) el.setAttribute("data-age", "");
    renderTime(el, value);
    return el;
  }

  window.MQB = {
    label: label, tone: tone, badge: badge, setBadge: setBadge,
    fmt: { count: count, measure: measure, rate: rate, duration: duration, size: size, age: age, utc: utcText, local: localText },
    time: time, renderTime: renderTime, upgradeTimes: upgradeTimes,
  };
  document.addEventListener("DOMContentLoaded", function () { upgradeTimes(document); });
  setInterval(function () {
    document.querySelectorAll("time.when[data-age][datetime]").forEach(function (el) { renderTime(el); });
  }, 5000);
})();

// Time filters in local time: an <input type="datetime-local" data-local-time> arrives holding
// UTC ("YYYY-MM-DDTHH:MM") and is shown in the browser's zone; on submit its form sends the
// moment in UTC ("…Z") under the input's name. [data-zone-note] elements get the zone ("UTC+05:30").
(function () {
  function pad(n) { return String(n).padStart(2, "0"); }
  function inputText(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function zoneText(d) {
    var offset = -d.getTimezoneOffset(), sign = offset < 0 ? "-" : "+";
    offset = Math.abs(offset);
    return "UTC" + sign + pad(Math.floor(offset / 60)) + ":" + pad(offset % 60);
  }
  function showLocal(root) {
    root.querySelectorAll("input[data-local-time]").forEach(function (input) {
      if (!input.value || input.hasAttribute("data-shown-local")) return;
      var d = new Date(input.value + "Z");
      if (!isNaN(d.getTime())) input.value = inputText(d);
      input.setAttribute("data-shown-local", "");
    });
    root.querySelectorAll("[data-zone-note]").forEach(function (el) {
      el.textContent = " (" + zoneText(new Date()) + ")";
    });
  }
  function restore(form) {
    form.querySelectorAll("input[data-utc-for]").forEach(function (hidden) { hidden.remove(); });
    form.querySelectorAll("input[data-local-time][data-name]").forEach(function (input) {
      input.name = input.getAttribute("data-name");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { showLocal(document); });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    restore(form);
    form.querySelectorAll("input[data-local-time][name]").forEach(function (input) {
      var hidden = document.createElement("input");
      var d = input.value ? new Date(input.value) : null;
      hidden.type = "hidden";
      hidden.name = input.name;
      hidden.setAttribute("data-utc-for", input.name);
      hidden.value = d && !isNaN(d.getTime()) ? d.toISOString().slice(0, 19) + "Z" : input.value;
      input.setAttribute("data-name", input.name);
      input.removeAttribute("name");
      input.after(hidden);
    });
  });
  // Back to this page from the browser's cache: the inputs carry their names again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form").forEach(restore);
  });
  window.MQB.localInputs = showLocal;
})();
