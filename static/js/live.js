// A websocket that reconnects with capped exponential backoff and picks wss: under https.
"use strict";
window.mqboardLive = function (path, onMessage, onState) {
  let delay = 500;
  let socket = null;
  function open() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + window.location.host + path);
    onState("connecting");
    socket.onopen = function () { delay = 500; onState("open"); };
    socket.onmessage = function (event) {
      try { onMessage(JSON.parse(event.data)); } catch (err) { console.error(err); }
    };
    socket.onclose = function (event) {
      if (event.code === 4401) { onState("unauthenticated"); return; }
      onState("closed");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  open();
  return { close: function () { if (socket) socket.close(); } };
};

window.mqboardAge = function (iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
};
