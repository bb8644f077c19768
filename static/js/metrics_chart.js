// Live metrics charts (templates/metrics/_chart.html): history from the JSON API,
// then points appended as the collector pushes them over the websocket.
// Every number shows when it was measured; unknown is "unknown", never 0; a
// pause in the data (collector or broker down) is drawn as a gap.
// Broker names are untrusted: they only ever go into textContent or URLs.
"use strict";
(function () {
  if (window.mqboardMetricsChart) { window.mqboardMetricsChart.scan(); return; }

  // What a panel's y axis counts: its label (the unit), how a value reads, whether ticks are whole.
  const COUNT = { label: "msg", format: function (v) { return window.MQB.fmt.count(v); }, whole: true };
  const RATE = { label: "msg/s", format: function (v) { return window.MQB.fmt.rate(v); }, whole: false };
  const SECONDS = { label: "s", format: function (v) { return window.MQB.fmt.duration(v); }, whole: false };
  // Whole-number tick steps for counts (uPlot would otherwise step by 0.5 on a small axis).
  const WHOLE_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2500, 5e3, 1e4, 2e4,
    25e3, 5e4, 1e5, 2e5, 25e4, 5e5, 1e6, 2e6, 25e5, 5e6, 1e7, 2e7, 5e7, 1e8, 1e9, 1e10, 1e11, 1e12];
  const PANELS = {
    queue: [
      { title: "Messages", axis: COUNT, series: [["depth", "total"], ["ready", "ready"], ["unacked", "unacked"]] },
      { title: "Rates", axis: RATE, series: [["publish_rate", "publish"], ["deliver_rate", "deliver"], ["ack_rate", "ack"]] },
    ],
    topic: [
      { title: "Messages kept", axis: COUNT, series: [["depth", "messages"]] },
      { title: "Produce rate", axis: RATE, series: [["publish_rate", "produce"]] },
    ],
    group: [
      { title: "Lag (messages)", axis: COUNT, series: [["lag", "lag"]] },
      { title: "Lag (seconds)", axis: SECONDS, series: [["lag_seconds", "lag"]] },
      { title: "Rates", axis: RATE, series: [["publish_rate", "produce"], ["deliver_rate", "consume"]] },
    ],
    "cluster/rabbitmq": [
      { title: "Messages", axis: COUNT, series: [["depth", "messages"]] },
      { title: "Rates", axis: RATE, series: [["publish_rate", "publish"], ["deliver_rate", "deliver"], ["ack_rate", "ack"]] },
    ],
    "cluster/kafka": [
      { title: "Messages kept and lag", axis: COUNT, series: [["depth", "messages"], ["lag", "lag"]] },
      { title: "Rates", axis: RATE, series: [["publish_rate", "produce"], ["deliver_rate", "consume"]] },
    ],
  };
  const NUMBERS = {
    queue: [["depth", "Messages"], ["ready", "Ready"], ["unacked", "Unacked"], ["publish_rate", "Publish"],
      ["deliver_rate", "Deliver"], ["ack_rate", "Ack"], ["consumers", "Consumers"], ["time_to_drain", "Drains in"]],
    topic: [["depth", "Messages kept"], ["publish_rate", "Produce"], ["consumers", "Members reading"]],
    group: [["lag", "Lag"], ["lag_seconds", "Lag in time"], ["deliver_rate", "Consume"], ["publish_rate", "Produce"],
      ["consumers", "Members"], ["time_to_drain", "Drains in"]],
    "cluster/rabbitmq": [["depth", "Messages"], ["publish_rate", "Publish"], ["deliver_rate", "Deliver"],
      ["ack_rate", "Ack"], ["consumers", "Consumers"]],
    "cluster/kafka": [["depth", "Messages kept"], ["publish_rate", "Produce"], ["deliver_rate", "Consume"],
      ["consumers", "Group members"], ["lag", "Lag"], ["lag_seconds", "Worst lag in time"]],
  };
  // Colours come from the theme's tokens (static/css/app.css, --chart-*), read when a chart is drawn;
  // these are the light theme's, for a page without them.
  const COLORS = ["#0969da", "#1a7f37", "#9a6700", "#cf222e", "#8250df"];
  const INK = { axis: "#57606a", grid: "rgba(31, 35, 40, .12)" };

  function palette(el) {
    const style = window.getComputedStyle(el);
    const token = function (name, fallback) { return style.getPropertyValue(name).trim() || fallback; };
    return {
      series: COLORS.map(function (c, i) { return token("--chart-" + (i + 1), c); }),
      axis: token("--chart-axis", INK.axis),
      grid: token("--chart-grid", INK.grid),
    };
  }

  // An axis in the theme's colours: its text and ticks, its grid lines.
  function inked(options, colours) {
    options.stroke = colours.axis;
    options.grid = { stroke: colours.grid, width: 1 };
    options.ticks = { stroke: colours.grid, width: 1 };
    return options;
  }
  // Time ticks in 24-hour local time: "HH:MM" within an hour, "MM-DD HH:MM" on longer ranges.
  function two(n) { return String(n).padStart(2, "0"); }
  function clock(d) { return two(d.getHours()) + ":" + two(d.getMinutes()); }
  function timeTicks(range) {
    return function (u, splits) {
      return splits.map(function (t) {
        if (t === null || t === undefined) return "";
        const d = new Date(t * 1000);
        return range === "1h" ? clock(d) : two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " + clock(d);
      });
    };
  }
  // The legend's value of a series while nothing is hovered: its last known one.
  function lastValue(data) {
    for (let i = data.length - 1; i >= 0; i--) if (data[i] !== null && data[i] !== undefined) return data[i];
    return null;
  }
  const GAP = 2.5;
  const RANGE_SECONDS = { "1h": 3600, "24h": 86400, "7d": 604800 };

  function format(field, value) {
    if (value === null || value === undefined || Number.isNaN(value)) return null;
    const fmt = window.MQB.fmt;
    if (field.endsWith("_rate")) return fmt.rate(value);
    if (field === "time_to_drain" && value === 0) return "empty";
    if (field === "lag_seconds" || field === "time_to_drain") return fmt.duration(value);
    return fmt.count(value);
  }
  // The y range of a panel: from zero (every field is a count, a rate or a duration), up to a
  // little above the highest value and never less than a small floor, so noise around 5/s
  // stays a flat line near 5 instead of cliffs across a 4.9 to 5.1 axis.
  function yRange(axis) {
    return function (u, min, max) {
      const floor = axis.whole ? 4 : 1;
      const top = max === null || max === undefined || !isFinite(max) ? floor : Math.max(floor, max * 1.15);
      return [0, axis.whole ? Math.ceil(top) : top];
    };
  }
  function drainOf(type, values) {
    const backlog = type === "group" ? values.lag : values.depth;
    if ((type !== "queue" && type !== "group") || backlog === null || backlog === undefined) return null;
    if (backlog <= 0) return 0;
    const inflow = values.publish_rate, outflow = values.deliver_rate;
    if (inflow === null || outflow === null || inflow === undefined || outflow === undefined || outflow <= inflow) return null;
    return backlog / (outflow - inflow);
  }

  function Chart(el) {
    this.el = el;
    this.type = el.dataset.entityType || "cluster";
    // Only whole-cluster charts depend on the broker kind (the page or the hello names it).
    this.kind = el.dataset.kind || "";
    this.cluster = el.dataset.cluster;
    this.vhost = el.dataset.vhost || "";
    this.name = el.dataset.name || "";
    this.range = RANGE_SECONDS[el.dataset.range] ? el.dataset.range : "1h";
    this.interval = 5;
    this.plots = [];
    this.pending = [];
    this.loaded = false;
    this.latest = null;
    this.reload = null;
    this.part = function (role) { return el.querySelector('[data-role="' + role + '"]'); };
    this.buildNumbers();
    this.bindRanges();
    this.connect();
    this.load();
    const self = this;
    setInterval(function () { self.tick(); }, 1000);
    window.addEventListener("resize", function () { self.resize(); });
  }

  Chart.prototype.spec = function (table) {
    return table[this.type + "/" + this.kind] || table[this.type] || [];
  };

  Chart.prototype.params = function () {
    const p = new URLSearchParams({ cluster: this.cluster });
    if (this.type === "queue") p.set("vhost", this.vhost);
    if (this.type !== "cluster") p.set("name", this.name);
    return p;
  };

  Chart.prototype.buildNumbers = function () {
    const box = this.part("numbers");
    box.replaceChildren();
    this.numbers = {};
    this.when = null;
    this.part("as-of").textContent = "not measured yet";
    this.spec(NUMBERS).forEach(function (pair) {
      const wrap = document.createElement("div");
      wrap.className = "unknown";
      wrap.dataset.field = pair[0];
      const dt = document.createElement("dt");
      dt.textContent = pair[1];
      const dd = document.createElement("dd");
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = "unknown";
      dd.append(value);
      wrap.append(dt, dd);
      box.append(wrap);
      this.numbers[pair[0]] = { wrap: wrap, value: value, time: null, step: this.interval };
    }, this);
  };

  Chart.prototype.bindRanges = function () {
    const self = this;
    this.el.querySelectorAll(".mqb-chart-ranges button").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.range === self.range ? "true" : "false");
      button.addEventListener("click", function () {
        self.range = button.dataset.range;
        self.el.querySelectorAll(".mqb-chart-ranges button").forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
        self.load();
      });
    });
  };

  Chart.prototype.load = function () {
    const self = this;
    this.loaded = false;
    if (this.reload) { clearTimeout(this.reload); this.reload = null; }
    const params = this.params();
    params.delete("cluster");
    params.set("type", this.type);
    params.set("range", this.range);
    fetch(this.el.dataset.historyUrl + "?" + params.toString(), {
      credentials: "same-origin", headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("history answered HTTP " + response.status);
      return response.json();
    }).then(function (history) {
      self.show(history);
    }).catch(function (err) {
      self.part("note").textContent = "History unavailable (" + err.message + "); showing live points only.";
      self.show(null);
    });
    if (this.range !== "1h") {
      // Longer ranges are per-minute or per-hour averages: refresh, don't append.
      this.reload = setTimeout(function () { self.load(); }, 60000);
    }
  };

  Chart.prototype.show = function (history) {
    const fields = history ? history.fields : ["depth", "ready", "unacked", "publish_rate", "deliver_rate", "ack_rate", "consumers", "lag", "lag_seconds"];
    this.data = { t: history ? history.t.slice() : [] };
    fields.forEach(function (f) { this.data[f] = history && history[f] ? history[f].slice() : []; }, this);
    this.fields = fields;
    // The server's step of a history with fewer than two samples is a guess (5 s):
    // trusting it would hide a gap of a faster live series until it is 12.5 s long.
    this.step = history && history.t.length >= 2 ? history.step : null;
    const note = this.part("note");
    if (history) {
      note.textContent = history.resolution === "raw"
        ? "Last hour: every sample, then live."
        : "Averages per " + (history.resolution === "minute" ? "minute" : "hour") + "; refreshed every minute.";
      this.numbersFromHistory();
    }
    this.draw();
    this.loaded = true;
    const waiting = this.pending;
    this.pending = [];
    waiting.forEach(function (p) { this.add(p); }, this);
  };

  Chart.prototype.numbersFromHistory = function () {
    const t = this.data.t;
    for (let i = t.length - 1; i >= 0; i--) {
      const values = {};
      let known = false;
      this.fields.forEach(function (f) { values[f] = this.data[f][i]; if (values[f] !== null) known = true; }, this);
      if (known) { this.setNumbers(t[i], values, this.step || this.interval, null, null); return; }
    }
  };

  function yAxis(axis) {
    const options = {
      size: 64,
      label: axis.label,
      labelSize: 18,
      values: function (u, splits) { return splits.map(function (v) { return window.MQB.fmt.measure(v); }); },
    };
    if (axis.whole) options.incrs = WHOLE_STEPS;
    return options;
  }

  Chart.prototype.draw = function () {
    const box = this.part("plots");
    this.plots.forEach(function (p) { p.destroy(); });
    this.plots = [];
    box.replaceChildren();
    if (typeof window.uPlot !== "function") { this.part("note").textContent = "The chart library did not load."; return; }
    const width = Math.max(280, box.clientWidth || this.el.clientWidth - 32);
    const colours = palette(this.el);
    this.spec(PANELS).forEach(function (panel) {
      const target = document.createElement("div");
      box.append(target);
      const axis = panel.axis;
      const range = RANGE_SECONDS[this.range];
      const options = {
        title: panel.title + " (" + axis.label + ")",
        width: width,
        height: 170,
        scales: {
          // The window asked for, ending now: one point of a 7-day view still spans 7 days.
          x: { time: true, range: function () { const now = Date.now() / 1000; return [now - range, now]; } },
          y: { range: yRange(axis) },
        },
        series: [{
          label: "Time",
          value: function (u, t) { return t === null || t === undefined ? "" : window.MQB.fmt.local(new Date(t * 1000)); },
        }].concat(panel.series.map(function (s, i) {
          return {
            label: s[1], stroke: colours.series[i % colours.series.length], width: 1.5, spanGaps: false,
            value: function (u, v) { return v === null || v === undefined ? "–" : axis.format(v); },
          };
        })),
        axes: [inked({ values: timeTicks(this.range), space: this.range === "1h" ? 50 : 90 }, colours), inked(yAxis(axis), colours)],
        legend: { live: true },
        hooks: {
          // No hovered point: hide the time row instead of showing "Time --".
          // No hovered point: each series shows its last known value.
          setLegend: [function (u) {
            const idle = u.cursor.idx === null || u.cursor.idx === undefined;
            const rows = u.root.querySelectorAll(".u-legend .u-series");
            if (rows[0]) rows[0].classList.toggle("mqb-idle", idle);
            if (!idle) return;
            for (let i = 1; i < u.series.length && i < rows.length; i++) {
              const cell = rows[i].querySelector(".u-value");
              const v = lastValue(u.data[i] || []);
              if (cell) cell.textContent = v === null ? "–" : axis.format(v);
            }
          }],
        },
      };
      const plot = new window.uPlot(options, this.columns(panel), target);
      plot.mqbPanel = panel;
      this.plots.push(plot);
    }, this);
    this.el.dataset.points = String(this.data.t.length);
  };

  Chart.prototype.columns = function (panel) {
    const data = this.data;
    return [data.t].concat(panel.series.map(function (s) { return data[s[0]] || []; }));
  };

  Chart.prototype.resize = function () {
    const box = this.part("plots");
    const width = Math.max(280, box.clientWidth);
    this.plots.forEach(function (p) { p.setSize({ width: width, height: 170 }); });
  };

  Chart.prototype.add = function (p) {
    if (!this.loaded) { this.pending.push(p); return; }
    if (this.latest && p.time < this.latest.time) return;  // an older sample arrived late
    this.setNumbers(p.time, p.values, p.step || this.interval, p.time_to_drain, p.extra);
    if (this.range !== "1h") return;
    const data = this.data;
    const last = data.t.length ? data.t[data.t.length - 1] : null;
    if (last !== null && p.time <= last) return;
    const step = Math.max(p.step || this.interval, 0.5);
    if (last !== null && p.time - last > GAP * Math.max(step, this.step || step)) {
      // The data paused (collector or broker down): a null point breaks the line.
      data.t.push(last + step);
      this.fields.forEach(function (f) { data[f].push(null); });
    }
    data.t.push(p.time);
    this.fields.forEach(function (f) {
      const v = p.values[f];
      data[f].push(v === undefined ? null : v);
    });
    const oldest = p.time - RANGE_SECONDS["1h"];
    let drop = 0;
    while (drop < data.t.length && data.t[drop] < oldest) drop++;
    if (drop) Object.keys(data).forEach(function (k) { data[k].splice(0, drop); });
    this.plots.forEach(function (plot) { plot.setData(this.columns(plot.mqbPanel)); }, this);
    this.el.dataset.points = String(data.t.length);
    this.el.dataset.lastTime = String(p.time);
  };

  Chart.prototype.setNumbers = function (time, values, step, drain, extra) {
    const all = Object.assign({}, values);
    all.time_to_drain = drain !== null && drain !== undefined ? drain : drainOf(this.type, values);
    Object.keys(this.numbers).forEach(function (field) {
      const n = this.numbers[field];
      let text = format(field, all[field]);
      if (text !== null && field === "lag_seconds" && extra && extra.lag_seconds_source === "estimate") {
        text += " (estimate)";
      }
      if (text === null && field === "time_to_drain" && all.time_to_drain === null && values.depth !== null) {
        text = "not draining";
      }
      n.value.textContent = text === null ? "unknown" : text;
      n.wrap.classList.toggle("unknown", text === null);
      n.time = time;
      n.step = step;
    }, this);
    this.latest = { time: time, values: values };
    if (values.depth !== undefined) this.el.dataset.depth = values.depth === null ? "" : String(values.depth);
    if (values.lag !== undefined) this.el.dataset.lag = values.lag === null ? "" : String(values.lag);
    this.tick();
  };

  // Every tile holds a value of one sample: its time is said once, in the chart's head.
  Chart.prototype.tick = function () {
    const now = Date.now() / 1000;
    let stale = false;
    Object.keys(this.numbers).forEach(function (field) {
      const n = this.numbers[field];
      if (n.time === null) return;
      const old = Math.max(0, now - n.time) > Math.max(3 * n.step, 2 * this.interval + 2);
      n.wrap.classList.toggle("stale", old);
      stale = stale || old;
    }, this);
    if (!this.latest) return;
    const asOf = this.part("as-of");
    if (!this.when) {
      this.when = window.MQB.time(this.latest.time, true);
      asOf.replaceChildren("as of ", this.when);
    } else {
      window.MQB.renderTime(this.when, this.latest.time);
    }
    asOf.classList.toggle("stale", stale);
  };

  Chart.prototype.setLive = function (state) {
    const labels = {
      connecting: "Live: connecting…",
      open: "Live: on",
      closed: "Live: disconnected, retrying…",
      unauthenticated: "Live: your session has ended, log in again",
      refused: "Live: refused by the server",
    };
    this.el.dataset.state = state;
    this.part("live").textContent = labels[state] || state;
  };

  Chart.prototype.setStatus = function (status) {
    const box = this.part("status");
    if (!status || status.ok !== false) {
      box.hidden = true;
      box.textContent = "";
      this.el.dataset.status = status && status.ok ? "ok" : "unknown";
      return;
    }
    box.replaceChildren("Cluster unavailable");
    if (status.down_since) box.append(" since ", window.MQB.time(status.down_since, true));
    box.append((status.message ? ": " + status.message : "") + ". The numbers below are the last known ones.");
    box.hidden = false;
    this.el.dataset.status = "down";
  };

  Chart.prototype.connect = function () {
    const self = this;
    const path = "/ws/metrics/" + this.type + "/?" + this.params().toString();
    window.mqboardLive(path, function (msg) { self.receive(msg); }, function (state) { self.setLive(state); });
  };

  Chart.prototype.receive = function (msg) {
    if (msg.type === "metrics.hello") {
      this.interval = msg.interval || this.interval;
      if (msg.kind && msg.kind !== this.kind) {
        this.kind = msg.kind;
        this.buildNumbers();
        if (this.loaded) { this.draw(); this.numbersFromHistory(); }
      }
      if (msg.status && msg.status.interval) this.interval = msg.status.interval;
      this.setStatus(msg.status && msg.status.ok === false ? msg.status : null);
    } else if (msg.type === "metrics.point") {
      this.add(msg);
    } else if (msg.type === "metrics.status") {
      if (msg.interval) this.interval = msg.interval;
      this.setStatus(msg);
    } else if (msg.type === "metrics.cluster") {
      if (msg.interval) this.interval = msg.interval;
      this.setStatus(msg);
      if (this.type === "cluster") this.add({ time: msg.sampled_at, values: msg.values, step: msg.interval });
    } else if (msg.type === "cluster.health" && this.type === "cluster" && msg.health && !msg.health.ok) {
      const since = msg.health.down_since ? Date.parse(msg.health.down_since) / 1000 : null;
      this.setStatus({ ok: false, down_since: since, message: msg.health.message });
    }
  };

  function scan() {
    document.querySelectorAll("[data-metrics-chart]").forEach(function (el) {
      if (el.dataset.ready) return;
      el.dataset.ready = "true";
      el.mqbChart = new Chart(el);
    });
  }
  window.mqboardMetricsChart = { scan: scan, Chart: Chart };
  scan();

  // The theme changes (the header's toggle, or the system's scheme): redraw in its colours.
  function recolour() {
    document.querySelectorAll("[data-metrics-chart]").forEach(function (el) {
      if (el.mqbChart && el.mqbChart.loaded) el.mqbChart.draw();
    });
  }
  new MutationObserver(recolour).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  const scheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  if (scheme && scheme.addEventListener) scheme.addEventListener("change", recolour);
})();
