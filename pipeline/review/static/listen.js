"use strict";
// Listen-in on the live call page: the button opens the WebSocket /live/listen/{call_id} (the
// session cookie authenticates it) and plays both parties' audio with Web Audio as it arrives,
// agent on the left and customer on the right. Each binary message holds frames: an 8-byte
// header (uint32 the frame's first sample in the call, uint16 samples, uint8 party 0 agent /
// 1 customer, uint8 0, little-endian) and int16 samples at the call's rate (8 kHz). A frame is
// played at its place in the call, a little behind live (LEAD_S), so the parties stay aligned and a
// gap stays silent; a listener that fell behind (a stalled tab, audio dropped by the server) jumps
// back to live. #listen-state exposes counters: data-samples (received), data-frames,
// data-played (scheduled on a running audio context) and data-state.
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const button = document.getElementById("listen");
  const state = document.getElementById("listen-state");
  const LEAD_S = 0.3, MAX_AHEAD_S = 3.0;
  let ws = null, ctx = null, anchor = null, rate = payload.sample_rate;
  let samples = 0, frames = 0, played = 0;

  function show(kind, text) {
    state.dataset.state = kind; state.textContent = text;
    button.textContent = kind === "listening" || kind === "connecting" ? "Stop listening" : "Listen in";
    button.setAttribute("aria-pressed", String(kind === "listening" || kind === "connecting"));
  }
  function count() {
    state.dataset.samples = String(samples); state.dataset.frames = String(frames); state.dataset.played = String(played);
  }
  function play(place, n, party, view, offset) {
    const buffer = ctx.createBuffer(2, n, rate);
    const out = buffer.getChannelData(party === 0 ? 0 : 1);
    for (let i = 0; i < n; i++) out[i] = view.getInt16(offset + 2 * i, true) / 32768;
    const at = place / rate;
    let when = anchor === null ? null : anchor + at;
    if (when === null || when < ctx.currentTime + 0.02 || when > ctx.currentTime + MAX_AHEAD_S) {
      anchor = ctx.currentTime + LEAD_S - at;  // (re)start a little behind live
      when = anchor + at;
    }
    const source = ctx.createBufferSource();
    source.buffer = buffer; source.connect(ctx.destination); source.start(when);
    if (ctx.state === "running") played += n;
  }
  function receive(data) {
    const view = new DataView(data);
    let offset = 0;
    while (offset + 8 <= data.byteLength) {
      const place = view.getUint32(offset, true), n = view.getUint16(offset + 4, true), party = view.getUint8(offset + 6);
      if (offset + 8 + 2 * n > data.byteLength) break;
      samples += n; frames += 1;
      if (n) play(place, n, party, view, offset + 8);
      offset += 8 + 2 * n;
    }
    count();
  }
  function stop(kind, text) {
    if (ws) { const w = ws; ws = null; w.onclose = null; w.close(); }
    if (ctx) { ctx.close(); ctx = null; }
    anchor = null;
    show(kind, text);
  }
  function start() {
    ctx = new AudioContext();
    ctx.resume().catch(() => {});
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/live/listen/" + encodeURIComponent(payload.call_id));
    ws.binaryType = "arraybuffer";
    show("connecting", "Connecting…");
    ws.onmessage = event => {
      if (typeof event.data === "string") {
        const hello = JSON.parse(event.data);
        rate = hello.sample_rate || rate;
        show("listening", "Listening (the call's audio a moment behind live).");
        return;
      }
      receive(event.data);
    };
    ws.onclose = event => {
      ws = null;
      if (event.code === 1000) stop("ended", "The call ended.");
      else stop("error", "Listen-in stopped" + (event.reason ? ": " + event.reason : " (refused, or the connection was lost)") + ".");
    };
  }
  button.addEventListener("click", () => {
    if (ws) stop("off", "Not listening.");
    else start();
  });
  count();
})();
