"use strict";
// The live wall (/live): every call since the server started, calls in progress first, from
// GET /api/live/calls every second; a call's open alerts are shown first, its closed ones muted.
// Rows are built with DOM calls (never HTML from data).
(function () {
  const table = document.getElementById("wall");
  const body = table.querySelector("tbody");
  const status = document.getElementById("wall-status");
  const ORDER = {live: 0, ended: 1, processing: 2, done: 3, failed: 4};

  function clock(s) {
    s = Math.max(0, Math.floor(s || 0));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(sec).padStart(2, "0");
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag); e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function cell(row, cls, text) {
    const td = document.createElement("td"); td.className = cls;
    if (text !== undefined) td.textContent = text;
    row.appendChild(td); return td;
  }
  function sentiment(td, score) {
    if (score === null || score === undefined) { td.textContent = "n/a"; td.classList.add("muted"); return; }
    td.textContent = (score > 0 ? "+" : "") + score.toFixed(2);
    if (score <= -0.3) td.classList.add("negative"); else if (score >= 0.3) td.classList.add("positive");
  }
  function render(calls, recognition) {
    calls.sort((a, b) => (ORDER[a.state] ?? 9) - (ORDER[b.state] ?? 9) || (a.started_at < b.started_at ? 1 : -1));
    body.replaceChildren(...calls.map(c => {
      const tr = document.createElement("tr");
      tr.dataset.call = c.call_id; tr.dataset.state = c.state;
      tr.dataset.alerts = c.alerts; tr.dataset.alertsTotal = c.alerts_total;  // open ones; all raised
      const link = document.createElement("a");
      link.href = "/live/" + encodeURIComponent(c.call_id); link.textContent = c.call_id;
      cell(tr, "call").appendChild(link);
      const st = cell(tr, "state state-" + c.state, c.state + (c.state === "live" && !c.connected ? " (reconnecting)" : ""));
      if (c.error) st.title = c.error;
      cell(tr, "agent", c.agent_id || "?");
      cell(tr, "queue", c.queue || "?");
      cell(tr, "duration", clock(c.duration_s));
      sentiment(cell(tr, "sentiment"), c.customer_sentiment);
      const alerts = cell(tr, "alerts");
      if (!c.alert_list.length) alerts.textContent = "none";
      // the open alerts first and prominent, then the closed ones muted
      const open = c.alert_list.filter(a => a.state === "open"), closed = c.alert_list.filter(a => a.state !== "open");
      if (c.alert_list.length) alerts.appendChild(el("b", "alert-count" + (open.length ? " negative" : " muted"),
        open.length + " open "));
      open.concat(closed).forEach(a => {
        const chip = el("span", "alert-chip " + (a.state === "open" ? "open" : "closed"),
          a.kind.replace("_", " ") + (a.at !== null ? " " + clock(a.at) : ""));
        chip.dataset.kind = a.kind; chip.dataset.state = a.state;
        chip.title = a.message + (a.state === "open" ? "" : " (closed)"); alerts.appendChild(chip);
      });
      cell(tr, "transcription", c.transcription);
      cell(tr, "listeners", String(c.listeners));
      return tr;
    }));
    const live = calls.filter(c => c.state === "live").length;
    status.textContent = live + " call" + (live === 1 ? "" : "s") + " in progress, " + calls.length + " since the server started." +
      (recognition ? " Live transcription: " + recognition + "." : "");
    table.dataset.updated = String(Number(table.dataset.updated) + 1);
  }
  async function poll() {
    try {
      const r = await fetch("/api/live/calls", {headers: {"Accept": "application/json"}});
      if (r.status === 401) { window.location.href = "/login"; return; }
      if (!r.ok) throw new Error("HTTP " + r.status);
      const data = await r.json();
      render(data.calls, data.recognition);
    } catch (e) {
      status.textContent = "Could not update (" + e.message + "); trying again.";
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
