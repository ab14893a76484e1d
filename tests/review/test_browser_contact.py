"""The interaction record in a real browser (headless Debian Chromium through Playwright, as in
test_browser.py, under the app's Content-Security-Policy): the contact reason plays the call
from its time, a written conversation's quote marks its message, and a reviewer corrects the
outcome and a follow-up and sees the correction after a reload."""

from __future__ import annotations

import pytest
from test_browser import browser, browser_login, no_csp_violation, wait_for  # noqa: F401  (fixtures, helpers)
from servers import stop_site
from test_contact_corrections import make_contact_site

pytestmark = pytest.mark.slow  # drives a browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """The site of test_contact_corrections.py, on a SQLite file only (the browser sees the
    same pages on either database)."""
    root = tmp_path_factory.mktemp("contact-browser")
    made = make_contact_site(root, str(root / "review.db"))
    yield made
    stop_site(made)


def test_a_reviewer_corrects_the_outcome_and_sees_it_after_a_reload(site, browser):  # noqa: F811
    ctx, page = browser_login(site, browser, "rita")
    page.goto(site["url"] + "/calls/c1")
    panel = page.locator("#interaction")
    assert panel.locator("h2").inner_text() == "Interaction"
    assert panel.locator("#contact-outcome .outcome-label").inner_text().lower() == "resolved"
    assert "(70% confidence)" in panel.locator("#contact-outcome").inner_text()
    reason = panel.locator("#contact-reason .contact-quote")
    assert reason.inner_text() == "0:09 “I want account <b>[ACCOUNT_NUMBER]</b> closed & my money back”"  # as text
    assert page.evaluate("document.querySelectorAll('#interaction b b, #interaction script').length") == 0
    assert panel.locator("#contact-follow-ups .due").inner_text().startswith("due 2026-11-04")

    # the contact reason plays the call from where the customer said it
    wait_for(page, "document.getElementById('player').readyState >= 1")
    reason.click()
    wait_for(page, "Math.abs(document.getElementById('player').currentTime - 9.5) < 0.3")

    # correct the outcome and add a follow-up with a due date
    page.select_option("#contact-outcome-select", "escalated")
    page.click("#follow-up-add")
    page.locator("#follow-up-rows .follow-up-row").last.locator(".fu-text").fill("Call back about the router")
    page.locator("#follow-up-rows .follow-up-row").last.locator(".fu-due").fill("2026-11-20")
    with page.expect_navigation():  # saved: the page reloads to show what the server keeps
        page.click("#contact-save")
    page.wait_for_selector("#contact-corrected")
    assert "Corrected by rita" in page.locator("#contact-corrected").inner_text()
    for _ in range(2):  # as saved, and after a reload
        assert page.locator("#contact-outcome .outcome-label").inner_text().lower() == "escalated"
        assert page.locator("#contact-outcome .badge.corrected").count() == 1
        follow_ups = page.locator("#contact-follow-ups .follow-up").all_inner_texts()
        assert len(follow_ups) == 2 and "Call back about the router" in follow_ups[1]
        assert "due 2026-11-20" in follow_ups[1] and "due 2026-11-04" in follow_ups[0]
        assert page.locator("#contact-automatic .auto-outcome").text_content() == "resolved"  # kept beside
        assert page.input_value("#contact-outcome-select") == "escalated"
        page.reload()
    assert page.locator("#contact-history li.contact-history-row").count() == 1

    # a written conversation: the contact reason marks the characters it quotes in message #1
    page.goto(site["url"] + "/calls/e1")
    page.locator("#contact-reason .contact-quote").click()
    wait_for(page, "document.querySelector('#m001 mark.evidence-mark') !== null")
    assert page.locator("#m001 mark.evidence-mark").inner_text() == "my invoice for October shows a double charge"
    ctx.close()
