"""A written e-mail thread in a real browser (headless Debian Chromium through Playwright, as in
test_browser.py, under the app's Content-Security-Policy): the queue filtered to e-mail opens
the thread as messages (no audio controls), and clicking a piece of evidence scrolls to its
message and marks exactly the characters it quotes there."""

from __future__ import annotations

import pytest
from test_browser import browser, browser_login, no_csp_violation, wait_for  # noqa: F401  (fixtures, helpers)
from servers import stop_site
from test_written import make_site
from written_helpers import EMAIL_ANSWERS, EMAIL_THREAD

pytestmark = pytest.mark.slow  # drives a browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """The written-conversation site of test_written.py, on a SQLite file only (the browser
    sees the same pages on either database)."""
    root = tmp_path_factory.mktemp("written-browser")
    made = make_site(root, str(root / "review.db"))
    yield made
    stop_site(made)


def marked(page, message: str):  # noqa: ANN001, ANN201 - a playwright page; the marks' texts
    return page.evaluate(f"[...document.querySelectorAll('#{message} mark.evidence-mark')].map(m => m.textContent)")


def test_an_email_thread_opens_as_messages_and_evidence_marks_its_characters(site, browser):  # noqa: F811
    ctx, page = browser_login(site, browser, "lena")
    page.set_viewport_size({"width": 1000, "height": 420})  # short: the page scrolls to a message
    page.goto(site["url"] + "/?period=all&channel=email")
    assert page.locator("#queue tbody tr").count() == 1
    assert page.locator("#queue tbody tr td.channel").inner_text() == "e-mail"
    page.click("#queue a[href='/calls/e1']")
    page.wait_for_url("**/calls/e1")

    # the thread as messages, no audio anywhere
    assert page.locator("h1").inner_text() == "E-mail thread e1"
    assert page.locator("#thread .message").count() == 4
    assert page.evaluate("document.querySelectorAll('audio, #player, #no-audio, #transcript').length") == 0
    first = page.locator("#m001")
    assert "#1" in first.locator(".message-head").inner_text() and "customer" in first.inner_text()
    assert first.locator(".message-subject").inner_text() == "Subject: Double charge on my invoice"
    assert first.locator(".attachment").inner_text() == "invoice-october.pdf (47.1 KB)"
    assert page.locator("#m002 .auto-reply-mark").inner_text() == "auto-reply"
    assert page.locator("#m003 .message-name").inner_text() == "Nina"
    texts = page.locator("#thread .message-text").all_text_contents()
    assert texts == [" ".join(m["text"].split()) for m in EMAIL_THREAD]

    # evidence: its message scrolled into view and outlined, its quoted characters marked
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    empathy = page.locator("[data-item='courtesy.empathy'] .ev")
    assert empathy.inner_text().startswith("#3 apology")
    empathy.click()
    wait_for(page, "document.querySelector('#m003 mark.evidence-mark') !== null")
    assert marked(page, "m003") == ["I am sorry about the double charge."]
    start, end = EMAIL_ANSWERS["courtesy.empathy"][1][0]["chars"]
    assert page.evaluate("document.querySelector('#m003 .message-text').firstChild.textContent") == \
        " ".join(EMAIL_THREAD[2]["text"].split())[:start]  # the emoji before it counted as one character
    assert "focused" in page.get_attribute("#m003", "class") and page.get_attribute("#m003", "aria-current") == "true"
    wait_for(page, "(r => r.top >= 0 && r.bottom <= window.innerHeight)"
                   "(document.querySelector('#m003 mark.evidence-mark').getBoundingClientRect())")
    assert page.evaluate("document.activeElement.id") == "m003"

    # another piece of evidence: the first mark goes, the message's text is whole again
    page.locator("[data-item='closing.resolved'] .ev").click()
    wait_for(page, "document.querySelector('#m004 mark.evidence-mark') !== null")
    assert marked(page, "m004") == ["the refund arrived."]
    assert marked(page, "m003") == [] and page.get_attribute("#m003", "aria-current") is None
    assert page.locator("#m003 .message-text").text_content() == " ".join(EMAIL_THREAD[2]["text"].split())
    assert page.evaluate("document.querySelectorAll('mark.evidence-mark').length") == 1

    # a second quote in the same message as the first: marked by its own characters
    page.locator("[data-item='opening.greeting'] .ev").click()
    wait_for(page, "document.querySelector('#m003 mark.evidence-mark') !== null")
    assert marked(page, "m003") == ["thank you for writing to us"] and marked(page, "m004") == []
    ctx.close()
