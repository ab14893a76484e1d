"use strict";
// The call page's interaction record: a reviewer, lead or admin corrects the contact reason
// (pick one of the customer's utterances, or write it), the outcome and the follow-ups (add,
// remove, edit a due date). Only the parts changed on the page are sent (a part sent empty goes
// back to the automatic one); the server keeps the correction beside the automatic record and
// the page reloads to show it. A refusal is said next to the Save button.
(function () {
  const form = document.getElementById("contact-form");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const url = "/api/calls/" + encodeURIComponent(payload.call_id) + "/contact";
  const msg = document.getElementById("contact-msg");
  const outcome = document.getElementById("contact-outcome-select");
  const reasonPick = document.getElementById("contact-reason-utterance");
  const reasonText = document.getElementById("contact-reason-text");
  const rows = document.getElementById("follow-up-rows");
  const touched = new Set();

  function say(text, kind) { msg.textContent = text; msg.className = "msg " + (kind || ""); }

  outcome.addEventListener("change", () => touched.add("outcome"));
  [reasonPick, reasonText].forEach(el => {
    el.addEventListener("change", () => touched.add("reason"));
    el.addEventListener("input", () => touched.add("reason"));
  });
  rows.addEventListener("input", () => touched.add("follow_ups"));
  rows.addEventListener("change", () => touched.add("follow_ups"));

  function wireRow(li) {
    li.querySelector(".fu-remove").addEventListener("click", () => {
      li.remove(); touched.add("follow_ups");
      const first = rows.querySelector(".fu-text");
      (first || document.getElementById("follow-up-add")).focus();
    });
  }
  rows.querySelectorAll(".follow-up-row").forEach(wireRow);

  document.getElementById("follow-up-add").addEventListener("click", () => {
    const n = rows.querySelectorAll(".follow-up-row").length + 1;
    const li = document.createElement("li");
    li.className = "follow-up-row"; li.dataset.utterance = ""; li.dataset.dueText = "";
    const text = document.createElement("input");
    text.className = "fu-text"; text.size = 40; text.maxLength = 2000;
    text.setAttribute("aria-label", "follow-up " + n);
    const label = document.createElement("label");
    const due = document.createElement("input");
    due.type = "date"; due.className = "fu-due"; due.setAttribute("aria-label", "due date of follow-up " + n);
    label.append("due ", due);
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "fu-remove"; remove.textContent = "Remove";
    li.append(text, " ", label, " ", remove);
    rows.append(li);
    wireRow(li);
    touched.add("follow_ups");
    text.focus();
  });

  function followUps() {
    return [...rows.querySelectorAll(".follow-up-row")].map(li => {
      const f = {text: li.querySelector(".fu-text").value, due: li.querySelector(".fu-due").value || null};
      if (li.dataset.utterance) f.utterance_id = li.dataset.utterance;
      if (li.dataset.dueText) f.due_text = li.dataset.dueText;
      return f;
    }).filter(f => f.text.trim() || f.due);  // an untouched empty row is no follow-up
  }

  async function send(body) {
    let r, data;
    try {
      r = await fetch(url, {method: "POST", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}});
      data = await r.json().catch(() => ({}));
    } catch (e) {
      say("Not saved: the server could not be reached. Your changes on this page are kept.", "error"); return;
    }
    if (r.ok) { say("Correction saved.", "ok"); window.location.reload(); return; }
    const detail = typeof data.detail === "string" ? data.detail : ("Not saved (" + r.status + ").");
    say(detail + " Your changes on this page are kept.", "error");
  }

  document.getElementById("contact-save").addEventListener("click", () => {
    const body = {};
    if (touched.has("outcome")) body.outcome = outcome.value || null;
    if (touched.has("reason")) {
      const uid = reasonPick.value, text = reasonText.value.trim();
      body.reason = uid || text ? Object.assign(uid ? {utterance_id: uid} : {}, text ? {text: text} : {}) : null;
    }
    if (touched.has("follow_ups")) body.follow_ups = followUps();
    if (!Object.keys(body).length) { say("Nothing changed to save.", "note"); return; }
    send(body);
  });
  const autoReason = document.getElementById("contact-reason-automatic");
  if (autoReason) autoReason.addEventListener("click", () => send({reason: null}));
  const autoFollowUps = document.getElementById("follow-ups-automatic");
  if (autoFollowUps) autoFollowUps.addEventListener("click", () => send({follow_ups: null}));
})();
