// Dead-letter pages. Confirmations come from data-confirm (the page's own
// dialog, in ui.js). On a letter's page: its status badge follows the letter
// (read from the API), and a binary body's edit box switches between base64
// and hex. Nothing here builds HTML: broker data goes in as text only.
"use strict";
(function () {
  // -- the letter's status, kept current -------------------------------------------
  const status = document.getElementById("letter-status");
  if (status && status.dataset.letterUrl && window.MQB) {
    let last = (status.querySelector(".badge") || {}).dataset;
    last = last ? last.status : "";
    const refresh = function () {
      if (document.hidden) return;
      fetch(status.dataset.letterUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (letter) {
          if (!letter || !letter.status || letter.status === last) return;
          last = letter.status;
          let badge = status.querySelector(".badge");
          if (!badge) { badge = window.MQB.badge(letter.status); status.appendChild(badge); }
          window.MQB.setBadge(badge, letter.status);
        })
        .catch(function () { /* the next round tries again */ });
    };
    setInterval(refresh, 5000);
  }

  // -- a binary body: base64 <-> hex --------------------------------------------
  const choice = document.querySelector("select[data-binary-encoding]");
  if (!choice) return;
  const form = choice.form;
  const box = form.querySelector("textarea[name=body]");
  const problem = document.getElementById("edit-encoding-error");
  let current = choice.value;

  function toBytes(text, encoding) {
    if (encoding === "hex") {
      const clean = text.replace(/\s+/g, "");
      if (clean.length % 2 || /[^0-9a-fA-F]/.test(clean)) throw new Error("not valid hex");
      const out = new Uint8Array(clean.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(i * 2, 2), 16);
      return out;
    }
    let raw;
    try { raw = atob(text.replace(/\s+/g, "")); } catch (e) { throw new Error("not valid base64"); }
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function fromBytes(bytes, encoding) {
    if (encoding === "hex") {
      return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
    }
    let raw = "";
    for (let i = 0; i < bytes.length; i += 8192) {
      raw += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    }
    return btoa(raw);
  }

  choice.addEventListener("change", function () {
    try {
      box.value = fromBytes(toBytes(box.value, current), choice.value);
      current = choice.value;
      problem.hidden = true;
      problem.textContent = "";
    } catch (e) {
      // Keep the text as it is, and the encoding it is written in.
      problem.textContent = "The body is " + e.message + ": fix it before switching to " + choice.value + ".";
      problem.hidden = false;
      choice.value = current;
    }
  });
})();
