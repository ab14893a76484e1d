"use strict";
// The call page's player: a transcript line or a piece of evidence plays the call from its time
// (click it, or Tab to it and press Enter or Space), and the line being spoken is highlighted
// (class "speaking", aria-current) as the audio plays. A link to the page with ?t=SECONDS (a
// coaching report's clip) opens it cued at that moment, the line there scrolled into view.
(function () {
  const player = document.getElementById("player");
  if (!player) return;
  function playAt(t) { player.currentTime = Number(t); player.play().catch(() => {}); }
  document.querySelectorAll("#transcript .line[data-start], .ev[data-start]").forEach(el => {
    el.addEventListener("click", () => playAt(el.dataset.start));
    if (el.tagName !== "BUTTON") {  // a <button> clicks on Enter and Space by itself
      el.addEventListener("keydown", event => {
        if ((event.key === "Enter" || event.key === " ") && !event.repeat) {
          event.preventDefault();  // Space would scroll the page
          playAt(el.dataset.start);
        }
      });
    }
  });

  // Each line is spoken from its start to its end (or, without an end, to the next line's start);
  // where lines overlap, the one that began last is the one highlighted.
  const els = [...document.querySelectorAll("#transcript .line[data-start]")];
  const lines = els.map((el, n) => {
    const start = Number(el.dataset.start), end = Number(el.dataset.end);
    const next = n + 1 < els.length ? Number(els[n + 1].dataset.start) : Infinity;
    return {el: el, start: start, end: Number.isFinite(end) && end > start ? end : next};
  });
  let current = null;
  function highlight() {
    const t = player.currentTime;
    let found = null;
    for (const line of lines) { if (line.start <= t && t < line.end) found = line.el; }
    if (found === current) return;
    if (current) { current.classList.remove("speaking"); current.removeAttribute("aria-current"); }
    if (found) { found.classList.add("speaking"); found.setAttribute("aria-current", "true"); }
    current = found;
  }
  ["timeupdate", "seeked", "loadedmetadata"].forEach(name => player.addEventListener(name, highlight));

  const cue = Number(new URLSearchParams(window.location.search).get("t"));
  if (Number.isFinite(cue) && cue > 0) {
    const at = () => { player.currentTime = cue; };
    if (player.readyState >= 1) at(); else player.addEventListener("loadedmetadata", at, {once: true});
    const line = lines.filter(l => l.start <= cue).pop();
    if (line) line.el.scrollIntoView({block: "center"});
  }
})();
