"""The review app as a reviewer uses it: headless Chromium (Debian's, driven by Playwright; no
browser download) against the real server: log in, open a call from the queue, play the
evidence, override a suggestion, see the draft saved, submit, see the queue and the lead's
dashboard change."""

from __future__ import annotations

import shutil

import pytest

from test_app import PASSWORD, server  # noqa: F401  (the module-scoped app fixture)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def browser_login(server: dict, browser, name: str):  # noqa: ANN001, ANN201 - playwright objects
    """A new browser context logged in as ``name``, and its page on the queue."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(server["url"] + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server["url"] + "/")
    return ctx, page


def lead_dashboard_row(server: dict, browser) -> dict[str, str]:  # noqa: ANN001
    """Agent a1's row of the dashboard, as the lead sees it."""
    ctx, page = browser_login(server, browser, "lena")
    page.click("text=Dashboard")
    page.wait_for_url("**/dashboard")
    row = page.locator("tr[data-agent=a1]")
    out = {k: row.locator(f".{k}").inner_text() for k in ("auto", "reviewed", "reviewed-calls")}
    ctx.close()
    return out


def test_a_reviewer_logs_in_plays_evidence_overrides_and_submits(server, browser):  # noqa: F811
    before = lead_dashboard_row(server, browser)
    assert before["reviewed-calls"] == "0" and before["reviewed"] == "n/a"
    page = browser.new_page()
    page.goto(server["url"] + "/calls/c1")
    assert page.url.endswith("/login")  # sent to log in first
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server["url"] + "/")
    assert page.locator("#queue tbody tr").count() == 1  # only her call
    page.click("text=c1")
    page.wait_for_url("**/calls/c1")

    # the audio loads, and clicking a piece of evidence plays the call from there
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=10_000)
    evidence = page.locator("[data-item='opening.greeting'] .ev").first
    start = float(evidence.get_attribute("data-start"))
    evidence.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.5")
    page.locator("#transcript .line").first.click()
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 1.0) < 0.5")

    # override the suggested "yes": the draft is saved as the reviewer goes
    assert page.locator("[data-item='opening.greeting'] .suggested").inner_text() == "yes"
    page.check("[data-item='opening.greeting'] input[value=no]")
    page.wait_for_function("document.getElementById('status').textContent.includes('Draft saved')")
    page.fill("[data-item='opening.greeting'] .comment", "no company name in the greeting")
    page.click("#save")
    page.wait_for_function("document.getElementById('state').textContent == 'draft'")

    # after a reload the answers are the reviewer's, then submit
    page.reload()
    assert page.is_checked("[data-item='opening.greeting'] input[value=no]")
    assert page.input_value("[data-item='opening.greeting'] .comment") == "no company name in the greeting"
    page.click("#submit")
    page.wait_for_function("document.getElementById('status').textContent.includes('Submitted')")
    page.goto(server["url"] + "/?reviewed=yes")
    assert page.locator("#queue tbody tr").first.inner_text().split("\t")[0].strip() == "c1"
    assert "submitted" in page.locator("#queue tbody tr").first.inner_text()
    page.close()
    # the lead's dashboard now counts the review, scored from the reviewer's answers
    after = lead_dashboard_row(server, browser)
    assert after["reviewed-calls"] == "1" and after["reviewed"] != "n/a" and after["auto"] == before["auto"]


def test_a_conflicting_save_is_shown_and_the_answers_stay_on_the_page(server, browser):  # noqa: F811
    ctx, page = browser_login(server, browser, "lena")
    first, second = ctx.new_page(), ctx.new_page()
    for p in (first, second):
        p.goto(server["url"] + "/calls/c2")
    first.check("[data-item='closing.thanks'] input[value=no]")
    first.wait_for_function("document.getElementById('status').textContent.includes('Draft saved')")
    second.check("[data-item='opening.greeting'] input[value=yes]")  # still on the version it loaded
    second.wait_for_function("document.getElementById('status').textContent.includes('conflict')")
    assert "kept" in second.inner_text("#status")
    assert second.is_checked("[data-item='opening.greeting'] input[value=yes]")  # nothing lost on the page
    ctx.close()


def test_a_lead_samples_calls_and_starts_a_calibration(server, browser):  # noqa: F811
    from pipeline.review.db import sessions
    from pipeline.review.loader import load_results
    from test_db import call_record, write_run

    recs = [call_record(cid, {"opening.greeting": "yes"}) for cid in ("c3", "c4")]
    recs[0]["scorecard"]["score"]["auto_fail"] = True
    write_run(server["out"], recs)
    with sessions(server["engine"]).begin() as s:
        load_results(s, server["out"])
    ctx, page = browser_login(server, browser, "lena")
    page.click("text=Sample")
    page.fill("input[name=per_agent]", "0")
    page.click("#plan")
    page.wait_for_function("document.getElementById('status').textContent.includes('would be assigned')")
    assert page.locator("#plan-table tbody tr").count() == 1
    assert "c3" in page.locator("#plan-table tbody tr").first.inner_text()
    page.click("#apply")
    page.wait_for_function("document.getElementById('status').textContent.includes('1 call(s) assigned')")

    page.click("text=Calibration")
    page.wait_for_url("**/calibrations")
    page.fill("#new-calibration input[name=name]", "November calibration")
    page.select_option("#new-calibration select[name=call_id]", "c4")
    page.check("#new-calibration input[value=rita]")
    page.check("#new-calibration input[value=sam]")
    page.click("#create")
    page.wait_for_selector("text=November calibration")
    assert "Waiting for rita, sam" in page.inner_text("main")
    ctx.close()
