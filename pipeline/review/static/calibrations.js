"use strict";
// The calibration page: start a session through /api/calibrations.
document.getElementById("create").addEventListener("click", async () => {
  const f = document.getElementById("new-calibration");
  const body = {name: f.name.value, call_id: f.call_id.value,
                reviewers: [...f.querySelectorAll("input[name=reviewers]:checked")].map(i => i.value)};
  const r = await fetch("/api/calibrations", {method: "POST", headers: {"Content-Type": "application/json",
    "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}, body: JSON.stringify(body)});
  const data = await r.json();
  const st = document.getElementById("status");
  if (r.ok) { location.reload(); } else { st.textContent = data.detail || "failed"; st.className = "status error"; }
});
