"use strict";
// The call page's trail: dispute an answer of a submitted review, a lead's decision on a
// dispute, and undoing a role decision. Each change reloads the page, which shows the trail
// as the server keeps it.
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  function say(text, kind) { status.textContent = text; status.className = "status " + (kind || ""); }
  async function post(url, body) {
    const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                                body: JSON.stringify(body || {})});
    const data = await r.json().catch(() => ({}));
    if (r.ok) { window.location.reload(); return; }
    say(data.detail || data.error || ("Failed (" + r.status + ")"), "error");
  }
  const form = document.getElementById("dispute-form");
  let target = null;
  document.querySelectorAll("button.dispute").forEach(b => b.addEventListener("click", () => {
    target = {submission_id: Number(b.dataset.submission), item_id: b.dataset.trailItem};
    document.getElementById("dispute-what").textContent = target.item_id;
    form.hidden = false;
    form.querySelector("textarea[name=reason]").focus();
  }));
  document.getElementById("dispute-cancel").addEventListener("click", () => { form.hidden = true; target = null; });
  document.getElementById("dispute-send").addEventListener("click", () => {
    if (!target) return;
    const reason = form.querySelector("textarea[name=reason]").value;
    if (!reason.trim()) { say("Say why the answer is wrong.", "error"); return; }
    post("/api/calls/" + encodeURIComponent(payload.call_id) + "/disputes",
         Object.assign({reason: reason, proposed: form.querySelector("select[name=proposed]").value || null}, target));
  });
  document.querySelectorAll(".dispute-row").forEach(row => {
    const decide = decision => post("/api/disputes/" + row.dataset.dispute + "/resolve", {
      decision: decision, answer: row.querySelector(".resolve-answer").value,
      comment: row.querySelector(".resolve-comment").value});
    const uphold = row.querySelector(".uphold"), reject = row.querySelector(".reject");
    if (uphold) uphold.addEventListener("click", () => decide("upheld"));
    if (reject) reject.addEventListener("click", () => decide("rejected"));
  });
  const undo = document.getElementById("swap-undo");
  if (undo) undo.addEventListener("click", () =>
    post("/api/calls/" + encodeURIComponent(payload.call_id) + "/speakers/undo"));
})();
