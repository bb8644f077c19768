// The live tail of a queue or topic (templates/tail/_tail.html). Broker data goes in with textContent only.
"use strict";
(function () {
  const KEEP = 100;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function timeOf(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }

  // The AMQP timestamp property, in the page's one time format (local, UTC on hover).
  function stamped(value) {
    const span = el("span", "stamped ", "meta");
    const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + "Z";
    if (window.MQB && !isNaN(new Date(iso))) span.appendChild(window.MQB.time(iso));
    else span.appendChild(document.createTextNode(value));
    return span;
  }

  function describe(decoded) {
    let meta = decoded.format + ", " + decoded.size + " bytes";
    if (decoded.truncated) meta += ", cut short";
    if (decoded.note) meta += " (" + decoded.note + ")";
    return meta;
  }

  function row(m) {
    const tr = document.createElement("tr");
    const when = el("td");
    when.appendChild(el("time", timeOf(m.received_at)));
    if (m.timestamp) when.appendChild(el("span", "produced " + timeOf(m.timestamp), "meta"));
    if (m.properties && m.properties.timestamp) when.appendChild(stamped(m.properties.timestamp));
    tr.appendChild(when);
    const where = el("td");
    if (m.partition !== undefined) {
      where.appendChild(el("span", "partition " + m.partition + " · offset " + m.offset));
      if (m.key) {
        const key = el("span", m.key.format === "null" ? "no key" : "key " + m.key.text, "meta name");
        where.appendChild(key);
      }
    } else {
      where.appendChild(el("span", m.exchange === "" ? "(default exchange)" : m.exchange, "name"));
      where.appendChild(el("span", m.routing_key, "meta name"));
      const props = m.properties || {};
      for (const name of ["content_type", "message_id", "correlation_id", "type", "app_id"]) {
        if (props[name]) where.appendChild(el("span", name + ": " + props[name], "meta name"));
      }
    }
    tr.appendChild(where);
    const body = el("td");
    body.appendChild(el("pre", m.body.text));
    body.appendChild(el("span", describe(m.body), "meta"));
    tr.appendChild(body);
    const headers = el("td");
    if (m.headers && m.headers.length) {
      const details = el("details");
      details.appendChild(el("summary", m.headers.length + " header" + (m.headers.length > 1 ? "s" : "")));
      const list = el("dl");
      for (const h of m.headers) {
        list.appendChild(el("dt", h[0], "name"));
        list.appendChild(el("dd", h[2] + " (" + h[1] + ")", "name"));
      }
      details.appendChild(list);
      headers.appendChild(details);
    } else {
      headers.textContent = "none";
    }
    tr.appendChild(headers);
    return tr;
  }

  function setup(root) {
    const part = function (name) { return root.querySelector('[data-role="' + name + '"]'); };
    const button = part("toggle");
    const messages = part("messages");
    let live = null;
    let wanted = false;
    let shown = 0;
    part("keep").textContent = String(KEEP);

    function setState(state, text) {
      root.dataset.state = state;
      part("state").textContent = text;
    }

    function status(s) {
      if (s.rate !== undefined && s.rate !== null) {
        part("rate").textContent = String(s.rate);
        part("rate-part").hidden = false;
      }
      counts(s);
      const alert = part("alert");
      alert.hidden = !(s.state === "untappable" || s.state === "error" || s.state === "refused");
      alert.textContent = alert.hidden ? "" : s.message;
      if (s.notes) {
        const notes = part("notes");
        notes.replaceChildren(...s.notes.map(function (n) { return el("li", n); }));
      }
      if (s.counting) {
        part("counting").hidden = false;
        part("counting").textContent = "How skipped is counted: " + s.counting;
      }
      const labels = {
        paused: "Paused.",
        starting: "Starting the tail…",
        running: "Live: showing messages as they arrive.",
        error: "The tail failed; retrying.",
        untappable: "This queue cannot be tapped.",
        refused: "Not started: over a limit (see the message).",
      };
      if (s.state === "refused") {
        // The server did not start it: back to a Start button, the reason in the alert.
        wanted = false;
        button.textContent = "Start";
        button.setAttribute("aria-pressed", "false");
        setState(s.state, labels.refused);
        return;
      }
      if (wanted || s.state === "paused") setState(s.state, labels[s.state] || s.state);
    }

    function counts(s) {
      if (s.skipped === undefined) return;
      const skipped = (s.skipped_exact === false ? "≥ " : "") + s.skipped;
      part("skipped").textContent = skipped;
      root.dataset.skipped = String(s.skipped);
    }

    function onMessage(data) {
      if (data.type === "tail.status") { status(data); return; }
      if (data.type !== "tail.message") return;
      counts(data);
      messages.insertBefore(row(data.message), messages.firstChild);
      while (messages.children.length > KEEP) messages.removeChild(messages.lastChild);
      shown += 1;
      part("shown").textContent = String(shown);
      root.dataset.shown = String(shown);
    }

    function onState(state) {
      if (state === "connecting") setState("connecting", "Connecting…");
      else if (state === "closed") setState("closed", "Connection lost; reconnecting…");
      else if (state === "unauthenticated") setState("closed", "Your session has ended; log in again.");
      else if (state === "refused") setState("closed", "The server refused this tail.");
    }

    function onOpen() {
      if (wanted) live.send({ action: "start" });
    }

    button.addEventListener("click", function () {
      wanted = !wanted;
      button.textContent = wanted ? "Pause" : "Start";
      button.setAttribute("aria-pressed", wanted ? "true" : "false");
      if (live === null) {
        live = window.mqboardLive(root.dataset.path, onMessage, function (state) {
          if (state === "open") onOpen(); else onState(state);
        });
        return;
      }
      live.send({ action: wanted ? "start" : "pause" });
    });
  }

  document.querySelectorAll("[data-tail]").forEach(setup);
})();
