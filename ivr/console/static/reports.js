// The reports page's four charts (uPlot), drawn from /console/reports/data (the URL is the
// data-src of #report-charts; the CSP forbids inline scripts, so nothing else is passed in).
(function () {
  var MUTED = "#5b6570", ACCENT = "#0969da", OK = "#1a7f37", BAD = "#cf222e",
      WARN = "#9a6700", BAND = "rgba(91, 101, 112, 0.35)";
  var HEIGHT = 200;

  function seconds(v) {
    if (v == null) return "–";
    v = Math.round(v);
    return v < 120 ? v + " s" : Math.floor(v / 60) + " min" + (v % 60 ? " " + (v % 60) + " s" : "");
  }
  // Axis ticks in seconds fall on round stretches of time, labelled short: 30 s, 1 min, 1:30.
  var TIME_STEPS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200];
  function tick(v) {
    if (v < 60) return v + " s";
    return v % 60 ? Math.floor(v / 60) + ":" + ("0" + (v % 60)).slice(-2) : v / 60 + " min";
  }
  function roundUp(v) {
    var step = TIME_STEPS.find(function (s) { return v / s <= 8; }) || 7200;
    return Math.ceil(v / step) * step;
  }
  function percent(v) { return v == null ? "–" : v.toFixed(0) + "%"; }
  function bars() { return uPlot.paths.bars({ size: [0.7, 60] }); }
  function noPath() { return null; }
  function note(root, name, text) {
    var el = root.querySelector('[data-note="' + name + '"]');
    if (el) el.textContent = text;
  }
  function sum(rows, key) { return rows.reduce(function (a, r) { return a + (r[key] || 0); }, 0); }
  // Ordinal x axes (wait buckets) label each index with its bucket.
  function bucketAxis(labels) {
    return {
      stroke: MUTED,
      splits: function () { return labels.map(function (_, i) { return i; }); },
      values: function (u, splits) { return splits.map(function (i) { return labels[i] || ""; }); },
    };
  }

  function hourly(data, width) {
    var rows = data.hourly;
    return [{
      width: width, height: HEIGHT,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), data.zone); },
      scales: { n: { range: function (u, min, max) { return [0, Math.max(1, max)]; } },
                pct: { range: [0, 100] } },
      series: [
        {},
        { label: "Calls", scale: "n", stroke: ACCENT, fill: "rgba(9, 105, 218, 0.25)",
          paths: bars(), points: { show: false } },
        { label: "Service level", scale: "pct", stroke: OK, width: 2, spanGaps: false,
          points: { show: true, size: 4, fill: OK },
          value: function (u, v) { return percent(v); } },
      ],
      axes: [
        { stroke: MUTED },
        { scale: "n", stroke: MUTED, label: "calls" },
        { scale: "pct", side: 1, stroke: OK, grid: { show: false },
          values: function (u, splits) { return splits.map(percent); } },
      ],
    }, [
      rows.map(function (r) { return r.t; }),
      rows.map(function (r) { return r.visits; }),
      rows.map(function (r) { return r.service_level == null ? null : r.service_level * 100; }),
    ], sum(rows, "visits") + " calls ended, " + sum(rows, "answered") + " answered; service " +
       "level = answered within " + data.answer_within + " s, out of all calls in the hour."];
  }

  function waits(data, width) {
    var rows = data.waits, labels = rows.map(function (r) { return r.label; });
    return [{
      width: width, height: HEIGHT,
      scales: { x: { time: false, range: [-0.5, rows.length - 0.5] },
                y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      series: [
        { label: "Waited", value: function (u, i) { return i == null ? "–" : labels[i]; } },
        { label: "Answered calls", stroke: ACCENT, fill: "rgba(9, 105, 218, 0.35)",
          paths: bars(), points: { show: false } },
      ],
      axes: [bucketAxis(labels), { stroke: MUTED, label: "calls" }],
    }, [rows.map(function (_, i) { return i; }), rows.map(function (r) { return r.visits; })],
    sum(rows, "visits") + " answered calls, by how long they waited before an agent answered."];
  }

  function estimates(data, width) {
    var found = data.estimates, pts = found.points.slice();
    pts.sort(function (a, b) { return a.expected - b.expected; }); // uPlot wants x ascending
    var top = 60;
    pts.forEach(function (p) {
      top = Math.max(top, p.expected, p.actual, p.lower, p.upper == null ? 0 : p.upper);
    });
    top = roundUp(top * 1.05);
    var xs = pts.map(function (p) { return p.expected; });
    // Each estimate's band (what the caller heard) as a faint vertical stroke behind its dot.
    function drawBands(u) {
      var ctx = u.ctx, box = u.bbox;
      ctx.save();
      ctx.beginPath();
      ctx.rect(box.left, box.top, box.width, box.height);
      ctx.clip();
      ctx.strokeStyle = BAND;
      ctx.lineWidth = Math.max(1, devicePixelRatio);
      ctx.beginPath();
      pts.forEach(function (p) {
        var x = u.valToPos(p.expected, "x", true);
        ctx.moveTo(x, u.valToPos(p.lower, "y", true));
        ctx.lineTo(x, u.valToPos(p.upper == null ? top : p.upper, "y", true));
      });
      ctx.stroke();
      ctx.restore();
    }
    var dot = function (color) {
      return { stroke: color, paths: noPath, points: { show: true, size: 6, fill: color, stroke: color },
               value: function (u, v) { return seconds(v); } };
    };
    var within = dot(OK), outside = dot(BAD);
    within.label = "Answered within the band"; outside.label = "Outside the band";
    var shown = found.shown < found.scored ? "the newest " + found.shown + " of the " : "the ";
    return [{
      width: width, height: HEIGHT,
      scales: { x: { time: false, range: [0, top] }, y: { range: [0, top] } },
      series: [
        { label: "Announced", value: function (u, v) { return seconds(v); } },
        within, outside,
        { label: "Exact (y = x)", stroke: MUTED, dash: [4, 4], width: 1, points: { show: false },
          value: function (u, v) { return seconds(v); } },
      ],
      axes: [
        { stroke: MUTED, label: "announced wait", incrs: TIME_STEPS,
          values: function (u, splits) { return splits.map(tick); } },
        { stroke: MUTED, label: "actual wait", incrs: TIME_STEPS,
          values: function (u, splits) { return splits.map(tick); } },
      ],
      hooks: { drawAxes: [drawBands] },
    }, [
      xs,
      pts.map(function (p) { return p.within_band ? p.actual : null; }),
      pts.map(function (p) { return p.within_band ? null : p.actual; }),
      xs.slice(),
    ], found.scored ? "Each dot is one of " + shown + found.scored + " estimates heard by " +
       "callers who were then answered; its grey stroke is the band they heard." :
       "No estimate in this period was followed by an answer, so none can be scored."];
  }

  function abandonment(data, width) {
    var rows = data.abandonment, labels = rows.map(function (r) { return r.label; });
    return [{
      width: width, height: HEIGHT,
      scales: { x: { time: false, range: [-0.5, rows.length - 0.5] },
                pct: { range: function (u, min, max) { return [0, Math.max(10, Math.ceil(max))]; } },
                n: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      series: [
        { label: "Waited", value: function (u, i) { return i == null ? "–" : labels[i]; } },
        { label: "Hung up (of those still waiting)", scale: "pct", stroke: BAD,
          fill: "rgba(207, 34, 46, 0.3)", paths: bars(), points: { show: false },
          value: function (u, v) { return v == null ? "–" : v.toFixed(1) + "%"; } },
        { label: "Still waiting", scale: "n", stroke: WARN, width: 2 },
      ],
      axes: [
        bucketAxis(labels),
        { scale: "pct", stroke: BAD, values: function (u, splits) { return splits.map(percent); } },
        { scale: "n", side: 1, stroke: WARN, grid: { show: false }, label: "callers" },
      ],
    }, [
      rows.map(function (_, i) { return i; }),
      rows.map(function (r) { return r.share == null ? null : r.share * 100; }),
      rows.map(function (r) { return r.waiting; }),
    ], (rows.length ? rows[0].waiting : 0) + " callers joined; for each stretch of waiting, " +
       "the share of those still there who hung up during it."];
  }

  var BUILDERS = { hourly: hourly, waits: waits, estimates: estimates, abandonment: abandonment };

  function draw(root, data) {
    var charts = [];
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      var made = BUILDERS[name](data, el.clientWidth || 560);
      el.textContent = "";
      charts.push([el, new uPlot(made[0], made[1], el)]);
      note(root, name, made[2]);
    });
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c[1].setSize({ width: c[0].clientWidth, height: HEIGHT }); });
    });
    root.setAttribute("data-rendered", "true");
  }

  function start() {
    var root = document.getElementById("report-charts");
    if (!root || !root.getAttribute("data-src")) return;
    fetch(root.getAttribute("data-src"), { headers: { Accept: "application/json" },
                                           credentials: "same-origin" })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.message || ("error " + r.status));
          return body;
        });
      })
      .then(function (data) { draw(root, data); })
      .catch(function (err) {
        root.querySelectorAll("[data-chart]").forEach(function (el) {
          el.textContent = "The chart could not be loaded: " + err.message;
          el.className += " error";
        });
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
