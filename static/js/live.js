// A websocket that reconnects with capped exponential backoff and picks wss: under https.
// onState gets "connecting", "open", "closed" (retrying), "unauthenticated" (4401/4403:
// no retry) or "refused" (4400/4404, a bad or unknown target: no retry).
"use strict";
window.mqboardLive = function (path, onMessage, onState) {
  let delay = 500;
  let socket = null;
  let stopped = false;
  function open() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + window.location.host + path);
    onState("connecting");
    socket.onopen = function () { delay = 500; onState("open"); };
    socket.onmessage = function (event) {
      try { onMessage(JSON.parse(event.data)); } catch (err) { console.error(err); }
    };
    socket.onclose = function (event) {
      if (stopped) return;
      if (event.code === 4401 || event.code === 4403) { onState("unauthenticated"); return; }
      if (event.code === 4400 || event.code === 4404) { onState("refused"); return; }
      onState("closed");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  open();
  return {
    close: function () { stopped = true; if (socket) socket.close(); },
    // Dropped unless the socket is open; pages resend their wishes on "open".
    send: function (data) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(data));
    },
  };
};

// Kept for pages not yet on MQB.time: the shared age ("3 min 5 s ago").
window.mqboardAge = function (iso) { return window.MQB.fmt.age(iso); };
