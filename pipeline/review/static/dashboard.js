// The leads' dashboard: its charts, drawn by plotly.js (served from the installed plotly
// package, /vendor/plotly.min.js) from the JSON block #dashboard-data, and the drill-down:
// a click on a point or a bar opens the queue of the calls behind it (the URL the server put
// beside each figure). No inline script or style is needed (the app's Content-Security-Policy):
// plotly.js's rules come from /static/plotly-extra.css.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  var BLUE = "#1f5fa8", GREEN = "#1e6b34", ORANGE = "#b35c00", GREY = "#c9d1dc", RED = "#b3261e";
  var TEAM_COLORS = ["#1f5fa8", "#b35c00", "#1e6b34", "#7a3e9d", "#8c1d18", "#2a7f8f", "#6b4b00", "#39465a"];
  var FONT = { family: "system-ui, sans-serif", size: 12, color: "#1d2430" };
  var CONFIG = { displayModeBar: false, responsive: true, scrollZoom: false, doubleClick: false };
  var DAY = 86400000;

  function percent(v) { return v === null || v === undefined ? "n/a" : Math.round(100 * v) + "%"; }

  function pValue(p) { return !known(p) ? "n/a" : p < 0.001 ? p.toExponential(1) : String(Number(p.toPrecision(2))); }

  function kappa(a) { return a.kappa === null || a.kappa === undefined ? "n/a" : a.kappa.toFixed(2); }

  // plotly.js reads a few HTML tags and entities in its texts (legend, ticks, hover): names and
  // items from the data are shown as written
  function plain(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function column(rows, key) { return rows.map(function (r) { return r[key] === undefined ? null : r[key]; }); }

  function known(v) { return v !== null && v !== undefined; }

  function hasValues(rows, key) { return rows.some(function (r) { return known(r[key]); }); }

  // a URL of this app (a path), never anything else: the only place a click may go
  function safeUrl(url) {
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : null;
  }

  function empty(div, text) {
    div.classList.add("chart-empty");
    div.textContent = text;
  }

  function baseLayout() {
    return {
      font: FONT, paper_bgcolor: "#fff", plot_bgcolor: "#fff", hovermode: "closest", dragmode: false,
      margin: { l: 60, r: 60, t: 10, b: 40 },
      legend: { orientation: "h", x: 0, y: 1.12, xanchor: "left" },
      hoverlabel: { font: FONT }
    };
  }

  // a click on a point or a bar opens the queue of its calls: its URL is the last customdata value
  function drillDown(div) {
    div.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      var extra = point && point.customdata;
      var url = safeUrl(Array.isArray(extra) ? extra[extra.length - 1] : null);
      if (url) window.location.assign(url);
    });
  }

  function draw(div, traces, layout) {
    return Plotly.newPlot(div, traces, layout, CONFIG).then(function () {
      drillDown(div);
      div.setAttribute("data-rendered", "1");
    });
  }

  // the time axis spans the window shown (its first day to the day after its last), widened to
  // the periods' days should a period begin before the window or end after it
  function timeAxis(rows) {
    var axis = { type: "date", title: { text: data.bucket ? "per " + data.bucket : "" }, fixedrange: true,
                 automargin: true };
    var win = data.window || {};
    if (!rows.length || !win.date_from || !win.date_to) return axis;
    var lo = Date.parse(win.date_from + "T00:00:00Z"), hi = Date.parse(win.date_to + "T00:00:00Z") + DAY;
    rows.forEach(function (r) { var s = span(r); lo = Math.min(lo, s[0]); hi = Math.max(hi, s[1]); });
    axis.range = [plotlyDate(lo), plotlyDate(hi)];
    return axis;
  }

  // the days of a trend row's period: [first, the day after its last] in milliseconds (UTC), told
  // by its label (2026-11-03 a day, 2026-W45 a week, 2026-11 a month), else by the bucket
  function span(row) {
    var first = Date.parse(row.start + "T00:00:00Z");
    var label = String(row.period || "");
    var kind = /^\d{4}-\d{2}-\d{2}$/.test(label) ? "day" : /^\d{4}-W\d{2}$/.test(label) ? "week"
      : /^\d{4}-\d{2}$/.test(label) ? "month" : data.bucket;
    var d = new Date(first);
    var stop = kind === "month" ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
      : first + (kind === "week" ? 7 : 1) * DAY;
    return [first, stop];
  }

  function plotlyDate(ms) { return new Date(ms).toISOString().slice(0, 19).replace("T", " "); }

  // each period's point and bar sit in the middle of its days, a bar as wide as most of them
  function middles(rows) {
    return rows.map(function (r) { var s = span(r); return plotlyDate((s[0] + s[1]) / 2); });
  }

  function widths(rows) { return rows.map(function (r) { var s = span(r); return 0.8 * (s[1] - s[0]); }); }

  // (1) mean automatic and reviewed score, pass rate, and the number of calls, per period
  function trendChart(div) {
    var rows = data.trend || [];
    if (!rows.length) return empty(div, "No calls in this period.");
    var x = middles(rows);
    var info = rows.map(function (r) { return [r.period, r.calls, r.reviewed_calls, r.url]; });
    var traces = [{
      type: "bar", name: "calls", x: x, width: widths(rows), y: column(rows, "calls"), yaxis: "y", customdata: info,
      marker: { color: GREY, opacity: 0.8 }, hovertemplate: "%{customdata[0]}: %{y} calls<extra></extra>"
    }];
    var lines = [
      ["mean_score", "automatic score", BLUE, "%{customdata[0]}: automatic score %{y:.0%} (%{customdata[1]} calls)"],
      ["mean_reviewed_score", "reviewed score", GREEN,
       "%{customdata[0]}: reviewed score %{y:.0%} (%{customdata[2]} reviewed calls)"],
      ["pass_rate", "pass rate", ORANGE, "%{customdata[0]}: pass rate %{y:.0%} (%{customdata[1]} calls)"]
    ];
    lines.forEach(function (line) {
      if (!hasValues(rows, line[0])) return;
      traces.push({
        type: "scatter", mode: "lines+markers", name: line[1], x: x, y: column(rows, line[0]), yaxis: "y2",
        customdata: info, line: { color: line[2], width: 2 }, marker: { color: line[2], size: 8 },
        connectgaps: true, hovertemplate: line[3] + "<extra></extra>"
      });
    });
    var layout = baseLayout();
    layout.xaxis = timeAxis(rows);
    // the calls' axis is the base one (right), so that its bars are drawn under the lines
    // and reach two thirds of the height at most, below most of the lines
    var most = Math.max.apply(null, column(rows, "calls").concat([1]));
    layout.yaxis = { title: { text: "calls" }, side: "right", range: [0, Math.ceil(most * 1.5)], showgrid: false,
                     fixedrange: true, automargin: true, rangemode: "tozero" };
    layout.yaxis2 = { title: { text: "score, pass rate" }, side: "left", overlaying: "y", range: [0, 1.05],
                      tickmode: "linear", tick0: 0, dtick: 0.25, tickformat: ".0%", fixedrange: true, automargin: true, gridcolor: "#eceff3" };
    return draw(div, traces, layout);
  }

  // (2) the pass rate (or, without one, the mean score) of each team per period, one line a team
  function teamChart(div) {
    return groupChart(div, data.teams || {}, null, "No calls of any team in this period.");
  }

  // (2b) the same per channel (calls, e-mail, chat), one line a channel
  function channelChart(div) {
    return groupChart(div, data.channels || {}, data.channel_titles || {}, "No calls in this period.");
  }

  // one line per group (a team, a channel) of its trend rows; `titles`: a group's name as shown
  function groupChart(div, groups, titles, nothing) {
    var names = Object.keys(groups).filter(function (t) { return (groups[t] || []).length; });
    if (!names.length) return empty(div, nothing);
    var key = data.team_measure || "mean_score";
    var label = key === "pass_rate" ? "pass rate" : "mean score";
    var traces = names.map(function (group, n) {
      var rows = groups[group];
      var color = TEAM_COLORS[n % TEAM_COLORS.length];
      var title = titles && titles[group] ? titles[group] : group;
      return {
        type: "scatter", mode: "lines+markers", name: plain(title), x: middles(rows), y: column(rows, key),
        customdata: rows.map(function (r) { return [r.period, r.calls, r.url]; }),
        line: { color: color, width: 2 }, marker: { color: color, size: 8 }, connectgaps: true,
        hovertemplate: "%{fullData.name} · %{customdata[0]}: " + label +
                       " %{y:.0%} (%{customdata[1]} calls)<extra></extra>"
      };
    });
    var layout = baseLayout();
    layout.xaxis = timeAxis([].concat.apply([], names.map(function (t) { return groups[t]; })));
    layout.yaxis = { title: { text: label }, range: [0, 1.05], tickformat: ".0%", fixedrange: true,
                     automargin: true, gridcolor: "#eceff3" };
    layout.showlegend = true;
    return draw(div, traces, layout);
  }

  // (3) automatic-vs-human agreement per item: one horizontal bar an item, the first on top
  function agreementChart(div) {
    var rows = (data.agreement || []).filter(function (a) { return known(a.accuracy); });
    if (!rows.length) return empty(div, "No reviewed answers in this period.");
    var traces = [{
      type: "bar", orientation: "h", y: rows.map(function (a) { return plain(a.item); }), x: column(rows, "accuracy"),
      text: rows.map(function (a) { return percent(a.accuracy) + " of " + a.n + ", κ " + kappa(a); }),
      // a short bar's figure goes after it, a long one's inside
      textposition: rows.map(function (a) { return a.accuracy < 0.4 ? "outside" : "inside"; }),
      cliponaxis: false, marker: { color: BLUE },
      customdata: rows.map(function (a) { return [a.n, kappa(a), a.url]; }),
      hovertemplate: "%{y}: %{x:.0%} agreement over %{customdata[0]} reviewed answers, " +
                     "kappa %{customdata[1]}<extra></extra>"
    }];
    var layout = baseLayout();
    layout.height = 70 + 30 * rows.length;
    layout.margin = { l: 10, r: 20, t: 10, b: 40 };
    layout.xaxis = { range: [0, 1], tickformat: ".0%", title: { text: "answers the suggestion got right" },
                     fixedrange: true, gridcolor: "#eceff3" };
    layout.yaxis = { autorange: "reversed", automargin: true, fixedrange: true, type: "category" };
    layout.showlegend = false;
    return draw(div, traces, layout);
  }

  // (4) the weekly agreement of each item, one line an item: a hollow point is a week with fewer
  // reviewed answers than the drift test needs (too few to say much), and an item whose agreement
  // dropped (a drift alert) is drawn thicker, the week it dropped a large red-edged diamond
  function driftChart(div) {
    var drift = data.drift || {};
    var items = (drift.items || []).filter(function (i) { return (i.weeks || []).length; });
    if (!items.length) return empty(div, "No reviewed answers in this period.");
    var few = known(drift.min_n) ? " · too few to test (under " + drift.min_n + ")" : " · too few to test";
    var traces = items.map(function (it, n) {
      var rows = it.weeks, color = TEAM_COLORS[n % TEAM_COLORS.length], alert = it.alert;
      var drop = alert ? " · dropped from " + percent(alert.baseline_agreement) + " (n = " + alert.baseline_n +
                         ") before, p = " + pValue(alert.p) : "";
      return {
        type: "scatter", mode: "lines+markers", name: plain(it.item) + (alert ? " (dropped)" : ""),
        x: middles(rows), y: column(rows, "agreement"),
        customdata: rows.map(function (w) {
          return [w.period, w.n, w.agreed, (w.few ? few : "") + (w.alert ? drop : ""), plain(it.item), w.url];
        }),
        line: { color: color, width: alert ? 4 : 2 },
        marker: {
          color: color, opacity: 1,  // (plotly.js fades markers of varying size unless told)
          symbol: rows.map(function (w) { return w.alert ? "diamond" : w.few ? "circle-open" : "circle"; }),
          size: rows.map(function (w) { return w.alert ? 16 : 9; }),
          line: { color: rows.map(function (w) { return w.alert ? RED : color; }),
                  width: rows.map(function (w) { return w.alert ? 3 : 2; }) }
        },
        hovertemplate: "%{customdata[4]} · %{customdata[0]}: %{y:.0%} right, %{customdata[2]} of " +
                       "n = %{customdata[1]} reviewed answers%{customdata[3]}<extra></extra>"
      };
    });
    var layout = baseLayout();
    layout.height = Math.max(340, 90 + 22 * items.length);
    layout.margin = { l: 60, r: 20, t: 10, b: 40 };
    layout.xaxis = timeAxis([].concat.apply([], items.map(function (i) { return i.weeks; })));
    layout.xaxis.title = { text: "week of the calls" };
    layout.yaxis = { title: { text: "answers the suggestion got right" }, range: [0, 1.05], tickformat: ".0%",
                     fixedrange: true, automargin: true, gridcolor: "#eceff3" };
    layout.legend = { orientation: "v", x: 1.02, y: 1, xanchor: "left", yanchor: "top" };
    layout.showlegend = true;
    return draw(div, traces, layout);
  }

  // the period picker: a preset period empties the dates, a date makes the period "the dates below"
  function periodPicker() {
    var choice = document.getElementById("period-choice");
    var start = document.getElementById("start"), end = document.getElementById("end");
    if (!choice || !start || !end) return;
    choice.addEventListener("change", function () {
      if (choice.value) { start.value = ""; end.value = ""; }
    });
    [start, end].forEach(function (input) {
      input.addEventListener("change", function () { if (start.value || end.value) choice.value = ""; });
    });
  }

  periodPicker();
  if (typeof window.Plotly === "undefined") {
    document.querySelectorAll(".chart").forEach(function (div) { empty(div, "The charts could not be loaded."); });
    return;
  }
  [["chart-trend", trendChart], ["chart-teams", teamChart], ["chart-channels", channelChart],
   ["chart-agreement", agreementChart], ["chart-drift", driftChart]].forEach(function (c) {
    var div = document.getElementById(c[0]);
    if (div) c[1](div);
  });
})();
