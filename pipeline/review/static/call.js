"use strict";
// The call page: save drafts as the reviewer goes, submit, and record a role swap (playing the
// audio from a line or a piece of evidence is player.js; disputes are trail.js). The page data
// comes from the JSON block #payload. Every message appears where the user acted: in the
// aria-live slot (.msg) next to the button or the item they used, and, for the eye, in the
// status line at the top. An agent's page has no review form and no swap button.
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  const callUrl = "/api/calls/" + encodeURIComponent(payload.call_id);

  // Show a message in `slot` (the .msg next to the control used); the other slots are cleared.
  function say(text, kind, slot) {
    status.textContent = text; status.className = "status " + (kind || "");
    document.querySelectorAll(".msg").forEach(el => {
      if (el !== slot && el.textContent) { el.textContent = ""; el.className = "msg"; }
    });
    if (slot) { slot.textContent = text; slot.className = "msg " + (kind || ""); }
  }
  // The message slot of a control: its item's, or the one that follows it in its paragraph.
  function slotOf(el) {
    const item = el && el.closest(".item");
    if (item) return item.querySelector(".msg");
    const p = el && el.closest("p");
    return (p && p.querySelector(".msg")) || document.getElementById("review-msg");
  }

  const swap = document.getElementById("swap");
  if (swap) swap.addEventListener("click", async () => {
    const r = await fetch(callUrl + "/speakers", {
      method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify({agent: "swap"})});
    const data = await r.json().catch(() => ({}));
    say(r.ok ? "Roles will be swapped when the pipeline next runs over this call."
             : "Could not record the swap: " + (data.detail || r.status) + ".", r.ok ? "ok" : "error",
        document.getElementById("swap-msg"));
  });

  const form = document.getElementById("review");
  if (!form) return;  // an agent reads the review that counts; they do not review
  const reviewMsg = document.getElementById("review-msg");
  let version = payload.review.version;
  let submitted = payload.review.state === "submitted";
  let dirty = false;          // answers changed since the last accepted save
  let saving = null;          // the pending autosave timer
  let autosaveSlot = null;    // where the pending autosave reports: next to the control changed last
  let inflight = Promise.resolve(true);  // saves go one after another: never two versions at once
  let busy = 0;               // saves queued or under way
  const finalBox = document.getElementById("final");  // leads and admins: this review counts

  function collect() {
    const answers = {};
    form.querySelectorAll(".item").forEach(div => {
      const checked = div.querySelector("input[type=radio]:checked");
      if (checked) answers[div.dataset.item] = {answer: checked.value, comment: div.querySelector(".comment").value};
    });
    return {version: version, answers: answers, comment: form.querySelector("textarea[name=__comment]").value};
  }
  function showState(state) { document.getElementById("state").textContent = state; }
  const NOT_SAVED = "This review is submitted: this change is not saved.";

  // One save. `how`: {submit, acceptAll, slot (where to report), explicit (a button was clicked)}.
  async function put(how) {
    if (!how.explicit && submitted) {  // the review was submitted meanwhile: an autosave has nothing to do
      say(NOT_SAVED, "note", how.slot); return false;
    }
    const body = collect(); if (how.submit) body.submit = true;
    if (how.submit && finalBox && finalBox.checked) body.final = true;
    if (how.acceptAll) body.accept_all = true;  // only offered where the lead allows one-click accept
    let r, data;
    try {
      r = await fetch(callUrl + "/review", {method: "PUT", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}});
      data = await r.json().catch(() => ({}));
    } catch (e) {
      say("Not saved: the server could not be reached. Your answers on this page are kept.", "error", how.slot);
      return false;
    }
    if (r.ok) {
      version = data.version; submitted = data.state === "submitted"; showState(data.state);
      dirty = false;
      say(how.submit ? "Submitted." : "Draft saved.", "ok", how.slot);
      if (how.acceptAll) window.location.reload();  // show the answers the suggestions filled in
      return true;
    }
    if (data.reason === "submitted") {  // submitted already (another tab): nothing was changed
      submitted = true; showState("submitted");
    }
    let text = data.error || data.detail || ("Save failed (" + r.status + ").");
    if (typeof text !== "string") text = "Save refused (" + r.status + ").";
    say(text + " Your answers on this page are kept.", "error", how.slot);
    return false;
  }
  function save(how) {
    clearTimeout(saving); saving = null;
    busy += 1;
    inflight = inflight.then(() => put(how), () => put(how)).finally(() => { busy -= 1; });
    return inflight;
  }

  document.getElementById("save").addEventListener("click", () => save({slot: reviewMsg, explicit: true}));
  document.getElementById("submit").addEventListener("click", () => {
    // blind confirmation: every item needs the reviewer's own answer (the server checks it too)
    const open = [...form.querySelectorAll(".item")].filter(div => !div.querySelector("input[type=radio]:checked"));
    if (open.length) {
      const refuse = () => say("Answer every item before submitting; not answered yet: " +
                               open.map(div => div.dataset.item).join(", ") + ".", "error", reviewMsg);
      // a draft save still pending goes first, so that its "saved" does not replace this message
      if (saving) save({slot: autosaveSlot}).then(ok => { if (ok) refuse(); });
      else if (busy) inflight.then(ok => { if (ok) refuse(); });
      else refuse();
      return;
    }
    save({submit: true, slot: reviewMsg, explicit: true});
  });
  const acceptAll = document.getElementById("accept-all");
  if (acceptAll) acceptAll.addEventListener("click", () =>
    save({submit: true, acceptAll: true, slot: document.getElementById("accept-msg"), explicit: true}));

  form.addEventListener("change", event => {
    if (event.target === finalBox) return;  // goes with the submit, not a draft
    dirty = true;
    const slot = event.target.name === "__comment" ? document.getElementById("comment-msg") : slotOf(event.target);
    if (submitted) { say(NOT_SAVED, "note", slot); return; }  // a submitted review is not saved again as a draft
    autosaveSlot = slot;
    clearTimeout(saving);
    saving = setTimeout(() => save({slot: autosaveSlot}), 600);  // drafts are saved as you go
  });
  window.addEventListener("beforeunload", event => {  // unsaved answers: the browser asks first
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
})();
