"""An agent and the page's messages in a real browser (headless Debian Chromium through
Playwright, against the real server, under the app's Content-Security-Policy): an agent logs
in, opens their reviewed call, disputes an answer and sees it waiting for the lead; and every
message (a refused dispute, a stale save, a review submitted already, an incomplete submit the
server refuses) appears in the aria-live slot next to the button that was clicked, with no
autosave error after a successful submit."""

from __future__ import annotations

import pytest
from review_helpers import db_url, postgres_url  # noqa: F401  (fixtures)
from test_agents import ITEMS, app  # noqa: F401  (the module-scoped app: agents, calls g1-g5)
from test_browser import browser, browser_login, no_csp_violation, wait_for  # noqa: F401  (fixtures, helpers)

pytestmark = pytest.mark.slow  # drives a browser


def text_of(page, selector: str) -> str:  # noqa: ANN001 - a playwright page
    return page.evaluate(f"document.querySelector({selector!r}).textContent")


def gap(page, a: str, b: str) -> float:  # noqa: ANN001
    """The distance in pixels between the boxes of the elements ``a`` and ``b`` (0: touching)."""
    one, two = page.locator(a).bounding_box(), page.locator(b).bounding_box()
    dx = max(0.0, max(one["x"], two["x"]) - min(one["x"] + one["width"], two["x"] + two["width"]))
    dy = max(0.0, max(one["y"], two["y"]) - min(one["y"] + one["height"], two["y"] + two["height"]))
    return (dx * dx + dy * dy) ** 0.5


def said_beside(page, slot: str, button: str, words: str, kind: str = "error") -> None:  # noqa: ANN001
    """The message with ``words`` is in the live slot ``slot``, right by ``button`` (same
    paragraph, within a line's height), of the kind ``kind``; the top status line echoes it."""
    wait_for(page, f"document.querySelector({slot!r}).textContent.includes({words!r})")
    assert page.get_attribute(slot, "aria-live") == "polite"
    assert kind in page.get_attribute(slot, "class").split()
    assert page.evaluate(f"document.querySelector({button!r}).closest('p').contains(document.querySelector({slot!r}))")
    assert gap(page, slot, button) < 40
    assert words in text_of(page, "#status")
    others = page.evaluate(f"[...document.querySelectorAll('.msg')]"
                           f".filter(el => el !== document.querySelector({slot!r})).map(el => el.textContent).join('')")
    assert others == ""  # said once, where the user acted


def test_an_agent_logs_in_opens_their_call_and_disputes_an_answer(app, browser):  # noqa: F811
    ctx, page = browser_login(app, browser, "agnes")
    assert page.locator("a[href='/calls/g2']").count() == 0 and page.locator("a[href='/calls/g3']").count() == 0
    page.click("a[href='/calls/g1']")
    page.wait_for_url("**/calls/g1")
    wait_for(page, "document.getElementById('player').readyState >= 1", timeout=10_000)  # the masked audio
    assert page.locator("#review").count() == 0 and page.locator("#swap").count() == 0  # no form, no swap
    item = page.locator("#scorecard [data-item='closing.thanks']")
    assert item.locator(".answer").inner_text() == "no" and "no thanks heard" in item.inner_text()
    assert "good call, but no thanks at the end" in page.inner_text("#scorecard")

    # the dispute form opens by the answer; a reason is needed, said by the Send button
    item.locator("button.dispute").click()
    assert page.is_visible("#dispute-form")
    opened_by = page.evaluate("document.getElementById('dispute-form').previousElementSibling.dataset.item")
    assert opened_by == "closing.thanks"
    assert page.evaluate("document.activeElement.name") == "reason"
    page.click("#dispute-send")
    said_beside(page, "#dispute-msg", "#dispute-send", "Say why the answer is wrong")

    page.fill("#dispute-form textarea[name=reason]", "I thanked the customer at 0:55")
    page.select_option("#dispute-form select[name=proposed]", "yes")
    page.click("#dispute-send")
    page.wait_for_selector(".dispute-row")  # after the page reloads
    assert page.inner_text(".dispute-row .dispute-state") == "open"
    assert "waiting for the lead's decision" in page.inner_text(".dispute-row")
    assert "I thanked the customer at 0:55" in page.inner_text(".dispute-row")
    mark = page.locator("#scorecard [data-item='closing.thanks'] .dispute-mark")
    assert "waiting for the lead's decision" in mark.inner_text()
    assert page.locator(".uphold").count() == 0  # only a lead decides

    # disputing the same answer again: the server's refusal is said by the Send button
    page.locator("#scorecard [data-item='closing.thanks'] button.dispute").click()
    page.fill("#dispute-form textarea[name=reason]", "really")
    page.click("#dispute-send")
    said_beside(page, "#dispute-msg", "#dispute-send", "disputed already")
    ctx.close()


def test_messages_appear_next_to_the_button_that_was_clicked(app, browser):  # noqa: F811
    """A lead reviews g2 in two tabs: the stale tab's Save, then its Submit after the other tab
    submitted, are answered next to those buttons; the submitting tab shows no autosave error
    afterwards; and a submit the server finds incomplete is answered by the Submit button."""
    from pipeline.review.db import sessions
    from pipeline.review.loader import load_results
    from test_db import call_record, write_run

    ctx, page = browser_login(app, browser, "lena")
    first, second = ctx.new_page(), ctx.new_page()
    for p in (first, second):
        p.goto(app["url"] + "/calls/g2")
    first.check("[data-item='closing.thanks'] input[value=no]")  # an autosave, reported by the item
    wait_for(first, "document.querySelector(\"[data-item='closing.thanks'] .msg\").textContent.includes('Draft saved')")
    assert gap(first, "[data-item='closing.thanks'] .msg", "[data-item='closing.thanks'] input[value=no]") < 40
    assert "ok" in first.get_attribute("[data-item='closing.thanks'] .msg", "class").split()
    # Submit with an item open, just after a change: the draft is saved, and the refusal stays by Submit
    first.bring_to_front()  # a tab in the background runs its timers late
    first.check("[data-item='closing.thanks'] input[value=na]")
    first.click("#submit")
    said_beside(first, "#review-msg", "#submit", "not answered yet: opening.greeting")
    saved = ("fetch('/api/calls/g2').then(r => r.json())"
             ".then(d => (d.review.answers['closing.thanks'] || {}).answer === 'na')")
    wait_for(first, saved)  # the change was saved as a draft ...
    first.wait_for_timeout(800)
    assert "not answered yet: opening.greeting" in text_of(first, "#review-msg")  # ... and did not hide the refusal
    first.check("[data-item='closing.thanks'] input[value=no]")
    wait_for(first, "document.querySelector(\"[data-item='closing.thanks'] .msg\").textContent.includes('Draft saved')")
    assert text_of(first, "#state") == "draft"

    # the second tab still has the version it loaded: its Save is a conflict, said by the buttons
    second.check("[data-item='opening.greeting'] input[value=yes]")
    second.click("#save")  # before the autosave's delay: the click saves, once
    said_beside(second, "#review-msg", "#save", "conflict")
    assert "kept" in text_of(second, "#review-msg")
    assert second.is_checked("[data-item='opening.greeting'] input[value=yes]")  # nothing lost on the page

    # the first tab submits (an answer changed just before: its autosave is folded into the submit)
    first.check("[data-item='opening.greeting'] input[value=yes]")
    first.click("#submit")
    said_beside(first, "#review-msg", "#submit", "Submitted.", kind="ok")
    first.wait_for_timeout(1000)  # longer than the autosave delay: no error after the submit
    assert text_of(first, "#review-msg") == "Submitted." and first.locator(".msg.error").count() == 0
    assert "error" not in first.get_attribute("#status", "class")
    # a change after the submit is not saved, and the page says so by that answer (not an error)
    first.check("[data-item='closing.thanks'] input[value=yes]")
    wait_for(first, "document.querySelector(\"[data-item='closing.thanks'] .msg\").textContent.includes('not saved')")
    assert "note" in first.get_attribute("[data-item='closing.thanks'] .msg", "class")
    first.wait_for_timeout(800)
    assert first.locator(".msg.error").count() == 0

    # the stale tab submits: the review is submitted already, said by the Submit button
    second.check("[data-item='closing.thanks'] input[value=no]")
    second.click("#submit")
    said_beside(second, "#review-msg", "#submit", "submitted already")
    assert text_of(second, "#state") == "submitted"

    # g5: the pipeline adds an item while rita's page is open; her submit is refused by the server
    third = browser_login(app, browser, "rita")[1]
    third.goto(app["url"] + "/calls/g5")
    rec = call_record("g5", {**ITEMS, "closing.recap": "yes"})
    rec["metadata"]["agent_id"] = "A12"
    write_run(app["out"], [rec])
    with sessions(app["engine"]).begin() as s:
        assert load_results(s, app["out"]).updated == 1
    for item in ITEMS:
        third.check(f"[data-item='{item}'] input[value=yes]")
    third.click("#submit")
    said_beside(third, "#review-msg", "#submit", "closing.recap")
    assert "answer every item" in text_of(third, "#review-msg")
    third.context.close()
    ctx.close()
