"use strict";
// The call page: play from a line or a piece of evidence, save drafts as the reviewer goes,
// submit, and record a role swap. The page data comes from the JSON block #payload.
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const player = document.getElementById("player");
  const status = document.getElementById("status");
  let version = payload.review.version;
  function say(text, kind) { status.textContent = text; status.className = "status " + (kind || ""); }
  function playAt(t) { player.currentTime = Number(t); player.play().catch(() => {}); }
  document.querySelectorAll("[data-start]").forEach(el => el.addEventListener("click", () => playAt(el.dataset.start)));
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
  async function put(submit) {
    const body = collect(); if (submit) body.submit = true;
    const r = await fetch("/api/calls/" + encodeURIComponent(payload.call_id) + "/review", {
      method: "PUT", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body)});
    const data = await r.json().catch(() => ({}));
    if (r.ok) { version = data.version; document.getElementById("state").textContent = data.state;
      dirty = false; submitted = data.state === "submitted";
      say(submit ? "Submitted." : "Draft saved.", "ok"); return true; }
    if (submitted && data.reason === "submitted") return true;  // an autosave after our own submit
    say((data.error || data.detail || ("Save failed (" + r.status + ")")) + " Your answers on this page are kept.", "error");
    return false;
  }
  function save(submit) {
    clearTimeout(saving);
    inflight = inflight.then(() => put(submit), () => put(submit));
    return inflight;
  }
  document.getElementById("save").addEventListener("click", () => save(false));
  document.getElementById("submit").addEventListener("click", () => save(true));
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
