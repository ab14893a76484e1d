"use strict";
// The sampling page: preview or apply a sample through /api/sample.
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("sample");
  const status = document.getElementById("status");
  async function run(apply) {
    const body = {per_agent: Number(form.per_agent.value), start: form.start.value, end: form.end.value,
                  seed: Number(form.seed.value), apply: apply,
                  reviewers: [...form.querySelectorAll("input[name=reviewers]:checked")].map(i => i.value)};
    const r = await fetch("/api/sample", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                                          body: JSON.stringify(body)});
    const data = await r.json();
    if (!r.ok) { status.textContent = data.detail || "failed"; status.className = "status error"; return; }
    const tbody = document.querySelector("#plan-table tbody"); tbody.innerHTML = "";
    for (const a of data.assignments) {
      const tr = document.createElement("tr");
      for (const v of [a.call_id, a.agent_id || "", a.reason, a.reviewer]) { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); }
      tbody.appendChild(tr);
    }
    status.textContent = data.assignments.length + (apply ? " call(s) assigned." : " call(s) would be assigned.");
    status.className = "status ok";
  }
  document.getElementById("plan").addEventListener("click", () => run(false));
  document.getElementById("apply").addEventListener("click", () => run(true));
})();
