"use strict";
// The page of a written conversation (an e-mail thread, a chat): a piece of evidence shows its
// message (scrolled into view, outlined) and marks the characters it quotes there
// (evidence.chars: [start, end) in the message's text, counted in Unicode code points as the
// pipeline counts them). Without a character span, the quote is looked for in the message;
// not found, the whole message is shown. The texts come from the JSON block #payload, the same
// texts the page shows, so the marked span is exactly the quoted one.
(function () {
  const payload = JSON.parse(document.getElementById("payload").textContent);
  const thread = document.getElementById("thread");
  if (!thread || !Array.isArray(payload.messages)) return;
  const byNumber = new Map(payload.messages.map(m => [m.n, m]));
  let shown = null;  // {item, body, text}: the message marked now

  function unmark() {
    if (!shown) return;
    shown.body.textContent = shown.text;
    shown.item.classList.remove("focused");
    shown.item.removeAttribute("aria-current");
    shown = null;
  }

  // [start, end) in code points: `chars` when it is a span inside the text, else where the quote
  // is found, else null
  function spanOf(points, text, chars, quote) {
    if (Array.isArray(chars) && chars.length === 2) {
      const start = Number(chars[0]), end = Number(chars[1]);
      if (Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= points.length) {
        return [start, end];
      }
    }
    if (quote) {
      const at = text.indexOf(quote);
      if (at >= 0) {
        const start = Array.from(text.slice(0, at)).length;
        return [start, start + Array.from(quote).length];
      }
    }
    return null;
  }

  function show(number, chars, quote) {
    const message = byNumber.get(number);
    const item = thread.querySelector('.message[data-n="' + number + '"]');
    if (!message || !item) return;
    unmark();
    const body = item.querySelector(".message-text");
    const text = typeof message.text === "string" ? message.text : "";
    const points = Array.from(text);
    const span = spanOf(points, text, chars, quote);
    if (span) {
      const mark = document.createElement("mark");
      mark.className = "evidence-mark";
      mark.textContent = points.slice(span[0], span[1]).join("");
      body.textContent = "";
      body.append(points.slice(0, span[0]).join(""), mark, points.slice(span[1]).join(""));
    }
    item.classList.add("focused");
    item.setAttribute("aria-current", "true");
    shown = {item: item, body: body, text: text};
    item.focus({preventScroll: true});  // a screen reader reads the message; Tab goes on from there
    (body.querySelector("mark") || item).scrollIntoView({block: "center"});
  }

  document.querySelectorAll(".ev[data-message]").forEach(button => {
    button.addEventListener("click", () => {
      const chars = button.dataset.chars ? button.dataset.chars.split(",").map(Number) : null;
      const quote = button.dataset.quote || "";
      show(Number(button.dataset.message), chars, quote);
    });
  });
})();
