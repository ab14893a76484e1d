"use strict";
// The call page's trail: dispute an answer of a submitted review (a reviewer in the trail, an
// agent on their scorecard), a lead's decision on a dispute, and undoing a role decision. Each
// change reloads the page, which shows the trail as the server keeps it; a refusal is said in
// the aria-live slot (.msg) next to the button that was used (and in the status line at the top).
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  function say(text, kind, slot) {
    status.textContent = text; status.className = "status " + (kind || "");
    document.querySelectorAll(".msg").forEach(el => {
      if (el !== slot && el.textContent) { el.textContent = ""; el.className = "msg"; }
    });
    if (slot) { slot.textContent = text; slot.className = "msg " + (kind || ""); }
  }
  async function post(url, body, slot) {
    let r, data;
    try {
      r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                            body: JSON.stringify(body || {})});
      data = await r.json().catch(() => ({}));
    } catch (e) {
      say("Not sent: the server could not be reached.", "error", slot); return;
    }
    if (r.ok) { window.location.reload(); return; }
    const detail = typeof data.detail === "string" ? data.detail : data.error;
    say(detail || ("Failed (" + r.status + ")."), "error", slot);
  }

  // The dispute form opens next to the Dispute button that was clicked.
  const form = document.getElementById("dispute-form");
  const disputeMsg = document.getElementById("dispute-msg");
  let target = null, opener = null;
  document.querySelectorAll("button.dispute").forEach(b => b.addEventListener("click", () => {
    target = {submission_id: Number(b.dataset.submission), item_id: b.dataset.trailItem};
    opener = b;
    document.getElementById("dispute-what").textContent = target.item_id;
    const around = b.closest(".item, .submission");
    if (around) around.after(form);
    form.hidden = false;
    say("", "", null);
    form.querySelector("textarea[name=reason]").focus();
  }));
  document.getElementById("dispute-cancel").addEventListener("click", () => {
    form.hidden = true; target = null;
    say("", "", null);
    if (opener) opener.focus();
  });
  document.getElementById("dispute-send").addEventListener("click", () => {
    if (!target) return;
    const reason = form.querySelector("textarea[name=reason]").value;
    if (!reason.trim()) { say("Say why the answer is wrong.", "error", disputeMsg); return; }
    post("/api/calls/" + encodeURIComponent(payload.call_id) + "/disputes",
         Object.assign({reason: reason, proposed: form.querySelector("select[name=proposed]").value || null}, target),
         disputeMsg);
  });

  document.querySelectorAll(".dispute-row").forEach(row => {
    const slot = row.querySelector(".resolve-msg");
    const decide = decision => post("/api/disputes/" + row.dataset.dispute + "/resolve", {
      decision: decision, answer: row.querySelector(".resolve-answer").value,
      comment: row.querySelector(".resolve-comment").value}, slot);
    const uphold = row.querySelector(".uphold"), reject = row.querySelector(".reject");
    if (uphold) uphold.addEventListener("click", () => decide("upheld"));
    if (reject) reject.addEventListener("click", () => decide("rejected"));
  });
  const undo = document.getElementById("swap-undo");
  if (undo) undo.addEventListener("click", () =>
    post("/api/calls/" + encodeURIComponent(payload.call_id) + "/speakers/undo", {}, document.getElementById("undo-msg")));
})();
