"use strict";
// The call page: save drafts as the reviewer goes, submit, and record a role swap (playing the
// audio from a line or a piece of evidence is player.js). The page data comes from the JSON block #payload.
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  let version = payload.review.version;
  function say(text, kind) { status.textContent = text; status.className = "status " + (kind || ""); }
  function collect() {
    const answers = {};
    document.querySelectorAll(".item").forEach(div => {
      const id = div.dataset.item;
      const checked = div.querySelector("input[type=radio]:checked");
      if (checked) answers[id] = {answer: checked.value, comment: div.querySelector(".comment").value};
    });
    return {version: version, answers: answers, comment: document.querySelector("textarea[name=__comment]").value};
  }
  let saving = null;          // the pending autosave timer
  let inflight = Promise.resolve(true);  // saves go one after another: never two versions at once
  let dirty = false;          // answers changed since the last accepted save
  let submitted = payload.review.state === "submitted";
  const finalBox = document.getElementById("final");  // leads and admins: this review counts
  async function put(submit, acceptAll) {
    const body = collect(); if (submit) body.submit = true;
    if (submit && finalBox && finalBox.checked) body.final = true;
    if (acceptAll) body.accept_all = true;  // only offered where the lead allows one-click accept
    const r = await fetch("/api/calls/" + encodeURIComponent(payload.call_id) + "/review", {
      method: "PUT", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body)});
    const data = await r.json().catch(() => ({}));
    if (r.ok) { version = data.version; document.getElementById("state").textContent = data.state;
      dirty = false; submitted = data.state === "submitted";
      say(submit ? "Submitted." : "Draft saved.", "ok");
      if (acceptAll) window.location.reload();  // show the answers the suggestions filled in
      return true; }
    if (submitted && data.reason === "submitted") return true;  // an autosave after our own submit
    say((data.error || data.detail || ("Save failed (" + r.status + ")")) + " Your answers on this page are kept.", "error");
    return false;
  }
  function save(submit, acceptAll) {
    clearTimeout(saving);
    inflight = inflight.then(() => put(submit, acceptAll), () => put(submit, acceptAll));
    return inflight;
  }
  document.getElementById("save").addEventListener("click", () => save(false));
  document.getElementById("submit").addEventListener("click", () => {
    // blind confirmation: every item needs the reviewer's own answer (the server checks it too)
    const open = [...document.querySelectorAll(".item")].filter(div => !div.querySelector("input[type=radio]:checked"));
    if (open.length) { say("Answer every item before submitting; not answered yet: " +
                           open.map(div => div.dataset.item).join(", ") + ".", "error"); return; }
    save(true);
  });
  const acceptAll = document.getElementById("accept-all");
  if (acceptAll) acceptAll.addEventListener("click", () => save(true, true));
  document.getElementById("review").addEventListener("change", () => {
    dirty = true;
    if (submitted) return;  // a submitted review is not saved again as a draft
    clearTimeout(saving); saving = setTimeout(() => save(false), 600);  // drafts are saved as you go
  });
  window.addEventListener("beforeunload", event => {  // unsaved answers: the browser asks first
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
  document.getElementById("swap").addEventListener("click", async () => {
    const r = await fetch("/api/calls/" + encodeURIComponent(payload.call_id) + "/speakers", {
      method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify({agent: "swap"})});
    say(r.ok ? "Roles will be swapped when the pipeline next runs over this call." : "Could not record the swap.", r.ok ? "ok" : "error");
  });
})();
