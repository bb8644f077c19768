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
