"use strict";
// One call in progress (/live/{call_id}): GET /api/live/calls/{id} every second fills the live
// transcript (confirmed words plain, unconfirmed ones in italics, class "partial"), the alerts
// (open ones first, each with an "Acknowledge" button; closed ones muted) and the scorecard items
// answered so far with their evidence, and the flags. A click on a word picks
// its moment for the next flag; without one, a flag is for "now" (the server's latest audio).
// Rows are built with DOM calls (never HTML from data). Listen-in is listen.js.
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const api = "/api/live/calls/" + encodeURIComponent(payload.call_id);
  const $ = id => document.getElementById(id);
  const transcript = $("live-transcript"), status = $("status");
  let picked = null;  // {start, role}: the word whose moment the next flag takes

  function clock(s) {
    s = Math.max(0, s || 0);
    const m = Math.floor(s / 60), sec = Math.floor(s % 60);
    return m + ":" + String(sec).padStart(2, "0");
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function evidenceList(evidence) {
    const ul = el("ul", "evidence");
    (evidence || []).forEach(e => {
      const parts = [];
      if (e.start !== undefined && e.start !== null) parts.push(clock(e.start) + (e.end !== undefined ? "–" + clock(e.end) : ""));
      if (e.rule) parts.push(e.rule);
      const li = el("li", "ev-live", parts.join(" ") + (parts.length && e.quote ? ": " : ""));
      if (e.quote) li.appendChild(el("q", "quote", e.quote));
      if (e.score !== undefined) li.appendChild(el("span", "muted", " (score " + Number(e.score).toFixed(2) + ")"));
      ul.appendChild(li);
    });
    return ul;
  }

  function renderTranscript(utterances) {
    const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 30;
    let words = 0, partial = 0;
    const rows = utterances.map(u => {
      const div = el("div", "utt " + u.role);
      div.dataset.start = u.start;
      div.appendChild(el("span", "muted", clock(u.start) + " "));
      div.appendChild(el("b", null, u.role + ": "));
      (u.words && u.words.length ? u.words : [{word: u.text, start: u.start, end: u.end, confirmed: true}]).forEach((w, n) => {
        if (n) div.appendChild(document.createTextNode(" "));
        const span = el("span", "w" + (w.confirmed ? "" : " partial"), w.word);
        span.dataset.start = w.start; span.dataset.role = u.role;
        if (!w.confirmed) span.title = "not confirmed yet";
        if (picked && picked.start === w.start && picked.role === u.role) span.classList.add("picked");
        if (w.confirmed) words += 1; else partial += 1;
        div.appendChild(span);
      });
      return div;
    });
    if (!rows.length) rows.push(el("p", "muted", "No words yet."));
    transcript.replaceChildren(...rows);
    transcript.dataset.words = String(words); transcript.dataset.partial = String(partial);
    if (atBottom) transcript.scrollTop = transcript.scrollHeight;
  }
  // Every alert the call raised: the open ones first, each with an "Acknowledge" button; then
  // the closed ones, muted, with what closed them (their condition ended, or who acknowledged).
  let shownAlerts = null;  // the alerts as last drawn (redrawn only when they change)
  function renderAlerts(alerts) {
    const drawn = JSON.stringify(alerts);
    if (drawn === shownAlerts) return;
    shownAlerts = drawn;
    const open = alerts.filter(a => a.state === "open"), closed = alerts.filter(a => a.state !== "open");
    $("alert-count").textContent = "(" + open.length + " open, " + alerts.length + " in all)";
    const box = $("live-alerts");
    box.dataset.open = String(open.length); box.dataset.total = String(alerts.length);
    if (!alerts.length) { box.replaceChildren(el("p", "muted", "None so far.")); return; }
    box.replaceChildren(...open.concat(closed).map(a => {
      const div = el("div", "live-alert" + (a.state === "open" ? " open" : " closed"));
      div.dataset.kind = a.kind; div.dataset.key = a.key; div.dataset.state = a.state;
      const head = el("div", "alert-head");
      const title = el("div");
      title.appendChild(el("b", null, a.kind.replace("_", " ")));
      title.appendChild(document.createTextNode((a.at !== null && a.at !== undefined ? " at " + clock(a.at) : "") + ": " + a.message));
      head.appendChild(title);
      if (a.state === "open") {
        const ack = el("button", "ack", "Acknowledge");
        ack.type = "button"; ack.dataset.key = a.key;
        head.appendChild(ack);
      }
      div.appendChild(head);
      if (a.state !== "open") {
        const by = a.closed_by === "condition" ? "closed at " + clock(a.closed_at) + " (it ended)"
          : "acknowledged by " + a.closed_by + " at " + clock(a.closed_at);
        div.appendChild(el("div", "alert-closed muted", by));
      }
      div.appendChild(evidenceList(a.evidence));
      return div;
    }));
  }
  const alertMsg = $("alert-msg");
  $("live-alerts").addEventListener("click", async event => {
    const button = event.target.closest("button.ack");
    if (!button) return;
    button.disabled = true;
    let r, data;
    try {
      r = await fetch(api + "/alerts/" + encodeURIComponent(button.dataset.key) + "/ack", {method: "POST",
        headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}});
      data = await r.json().catch(() => ({}));
    } catch (e) {
      alertMsg.textContent = "Not acknowledged: the server could not be reached."; alertMsg.className = "msg error";
      button.disabled = false; return;
    }
    if (r.ok || r.status === 409) {
      const alert = r.ok ? data : data.alert;
      alertMsg.textContent = r.ok ? "Acknowledged." : "Already closed" + (alert && alert.closed_by !== "condition" ? " by " + alert.closed_by : "") + ".";
      alertMsg.className = r.ok ? "msg ok" : "msg note";
      if (alert && shownAlerts !== null) {
        renderAlerts(JSON.parse(shownAlerts).map(a => a.key === alert.key ? alert : a));
      }
      return;
    }
    alertMsg.textContent = "Not acknowledged: " + (typeof data.detail === "string" ? data.detail : "HTTP " + r.status) + ".";
    alertMsg.className = "msg error"; button.disabled = false;
  });
  function renderItems(items) {
    const box = $("live-items");
    if (!items.length) { box.replaceChildren(el("p", "muted", "Nothing answered yet.")); return; }
    box.replaceChildren(...items.map(it => {
      const div = el("div", "item");
      div.dataset.item = it.id;
      div.appendChild(el("div", null, it.question));
      const line = el("div", "muted", "Suggested: ");
      line.appendChild(el("b", "suggested" + (it.answer === "no" ? " fail" : ""), it.answer));
      if (it.confidence !== null && it.confidence !== undefined) line.appendChild(document.createTextNode(" (" + Math.round(100 * it.confidence) + "% confidence)"));
      div.appendChild(line);
      div.appendChild(evidenceList(it.evidence));
      return div;
    }));
  }
  function renderFlags(flags) {
    const ul = $("live-flags");
    ul.replaceChildren(...flags.map(f => {
      const li = el("li", "flag");
      li.dataset.flag = f.id; li.dataset.at = f.at;
      li.appendChild(el("span", "flag-at", clock(f.at)));
      li.appendChild(el("span", "flag-author", f.author));
      if (f.note) li.appendChild(el("span", "flag-note", f.note));
      return li;
    }));
  }
  function render(call) {
    const state = $("live-state");
    state.textContent = call.state; state.className = "state-" + call.state;
    $("meta-duration").textContent = clock(call.duration_s);
    $("meta-transcription").textContent = call.transcription;
    const end = call.sentiment && call.sentiment.customer_end;
    const sentiment = $("meta-sentiment");
    sentiment.textContent = end === null || end === undefined ? "n/a" : (end > 0 ? "+" : "") + end.toFixed(2);
    sentiment.className = end !== null && end !== undefined && end <= -0.3 ? "negative" : "";
    renderTranscript(call.utterances || []);
    renderAlerts(call.alerts || []);
    renderItems(call.suggestions || []);
    renderFlags(call.flags || []);
    document.body.dataset.liveState = call.state;
  }

  async function poll() {
    try {
      const r = await fetch(api, {headers: {"Accept": "application/json"}});
      if (r.status === 401) { window.location.href = "/login"; return; }
      if (r.status === 404) { status.textContent = "The server no longer knows this call."; status.className = "status error"; return; }
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
      if (status.className.includes("error") && status.dataset.kind === "poll") { status.textContent = ""; status.className = "status"; }
    } catch (e) {
      status.textContent = "Could not update (" + e.message + "); trying again."; status.className = "status error";
      status.dataset.kind = "poll";
    }
    setTimeout(poll, 1000);
  }

  function pick(start, role) {
    picked = start === null ? null : {start: start, role: role};
    document.querySelectorAll("#live-transcript .w.picked").forEach(w => w.classList.remove("picked"));
    const at = $("flag-at");
    if (picked) {
      document.querySelectorAll("#live-transcript .w").forEach(w => {
        if (Number(w.dataset.start) === start && w.dataset.role === role) w.classList.add("picked");
      });
      at.textContent = clock(start) + " (the word clicked)"; at.dataset.at = String(start);
    } else {
      at.textContent = "now"; at.dataset.at = "";
    }
    $("flag-now").hidden = !picked;
  }
  transcript.addEventListener("click", event => {
    const w = event.target.closest(".w");
    if (w) pick(Number(w.dataset.start), w.dataset.role);
  });
  $("flag-now").addEventListener("click", () => pick(null));

  const msg = $("flag-msg");
  $("flag").addEventListener("click", async () => {
    const body = {note: $("flag-note").value, at: picked ? picked.start : null};
    let r, data;
    try {
      r = await fetch(api + "/flags", {method: "POST", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}});
      data = await r.json().catch(() => ({}));
    } catch (e) {
      msg.textContent = "Not flagged: the server could not be reached."; msg.className = "msg error"; return;
    }
    if (!r.ok) {
      msg.textContent = "Not flagged: " + (typeof data.detail === "string" ? data.detail : "HTTP " + r.status) + ".";
      msg.className = "msg error"; return;
    }
    msg.textContent = "Flagged at " + clock(data.at) + "."; msg.className = "msg ok";
    $("flag-note").value = ""; pick(null);
    const li = el("li", "flag"); li.dataset.flag = data.id; li.dataset.at = data.at;
    li.appendChild(el("span", "flag-at", clock(data.at))); li.appendChild(el("span", "flag-author", data.author));
    if (data.note) li.appendChild(el("span", "flag-note", data.note));
    $("live-flags").appendChild(li);
  });
  poll();
})();
