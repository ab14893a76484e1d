"""The review app as a reviewer uses it: headless Chromium (Debian's, driven by Playwright; no
browser download) against the real server: log in, open a call from the queue, play the
evidence, override a suggestion, see the draft saved, submit, see the queue and the lead's
dashboard change."""

from __future__ import annotations

import shutil
import time

import pytest

from review_helpers import db_url, postgres_url  # noqa: F401  (fixtures)
from test_access import POLICY, guarded  # noqa: F401  (a fresh app that locks a name after 3 failures)
from test_app import PASSWORD, server  # noqa: F401  (the module-scoped app fixture)

pytestmark = pytest.mark.slow  # drives a browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def wait_for(page, expression: str, timeout: int = 5_000) -> None:  # noqa: ANN001 - a playwright page
    """Wait until the JavaScript ``expression`` is true on ``page``. (Playwright's
    ``wait_for_function`` compiles its predicate with ``new Function``, which the app's
    Content-Security-Policy forbids; ``evaluate`` goes through the DevTools protocol.)"""
    end = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise TimeoutError(f"gave up waiting for {expression}")
        time.sleep(0.05)


class WatchedBrowser:
    """The browser, keeping every Content-Security-Policy violation its pages report (Chromium
    logs each one to the console), so that each test can check there were none."""

    def __init__(self, browser) -> None:  # noqa: ANN001 - a playwright Browser
        self.browser = browser
        self.violations: list[str] = []

    def new_context(self, **kwargs):  # noqa: ANN003, ANN201 - a playwright BrowserContext
        ctx = self.browser.new_context(**kwargs)
        ctx.on("console", lambda m: "Content Security Policy" in m.text and self.violations.append(m.text))
        return ctx

    def new_page(self, **kwargs):  # noqa: ANN003, ANN201 - a playwright Page in a context of its own
        return self.new_context(**kwargs).new_page()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield WatchedBrowser(b)
        b.close()


@pytest.fixture(autouse=True)
def no_csp_violation(browser):  # noqa: ANN001
    """Every page works under the app's Content-Security-Policy: nothing it blocks was tried."""
    browser.violations.clear()
    yield
    assert browser.violations == []


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
    wait_for(page, "document.getElementById('player').readyState >= 1", timeout=10_000)
    evidence = page.locator("[data-item='opening.greeting'] .ev").first
    start = float(evidence.get_attribute("data-start"))
    evidence.click()
    wait_for(page, f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.5")
    page.locator("#transcript .line").first.click()
    wait_for(page, "Math.abs(document.getElementById('player').currentTime - 1.0) < 0.5")

    # the suggestion is shown but not pre-selected: every item waits for the reviewer's answer
    assert page.locator("[data-item='opening.greeting'] .suggested").inner_text() == "yes"
    assert page.locator("#review input[type=radio]:checked").count() == 0
    assert page.locator("#accept-all").count() == 0  # no one-click accept unless a lead allows it
    # override the suggested "yes": the draft is saved as the reviewer goes
    page.check("[data-item='opening.greeting'] input[value=no]")
    wait_for(page, "document.getElementById('status').textContent.includes('Draft saved')")
    page.fill("[data-item='opening.greeting'] .comment", "no company name in the greeting")
    # the state reads "draft" already (the autosave above): wait for this save's answer
    with page.expect_response(lambda r: r.url.endswith("/review") and r.request.method == "PUT"
                              and r.ok and "no company name" in (r.request.post_data or "")):
        page.click("#save")
    wait_for(page, "document.getElementById('state').textContent == 'draft'")

    # after a reload the answers are the reviewer's, then submit
    page.reload()
    assert page.is_checked("[data-item='opening.greeting'] input[value=no]")
    assert page.input_value("[data-item='opening.greeting'] .comment") == "no company name in the greeting"
    page.click("#submit")  # closing.thanks is not answered yet: refused on the page
    wait_for(page, "document.getElementById('status').textContent.includes('closing.thanks')")
    page.check("[data-item='closing.thanks'] input[value=no]")
    wait_for(page, "document.getElementById('status').textContent.includes('Draft saved')")
    page.check("[data-item='opening.greeting'] input[value=yes]")  # its autosave is still pending ...
    page.click("#submit")  # ... when the reviewer submits: the saves go one after the other
    wait_for(page, "document.getElementById('status').textContent.includes('Submitted')")
    page.wait_for_timeout(1000)  # longer than the autosave delay: no error after the submit
    assert page.inner_text("#status") == "Submitted." and "error" not in page.get_attribute("#status", "class")
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
    wait_for(first, "document.getElementById('status').textContent.includes('Draft saved')")
    second.check("[data-item='opening.greeting'] input[value=yes]")  # still on the version it loaded
    wait_for(second, "document.getElementById('status').textContent.includes('conflict')")
    assert "kept" in second.inner_text("#status")
    assert second.is_checked("[data-item='opening.greeting'] input[value=yes]")  # nothing lost on the page
    # leaving with answers not yet saved: the browser asks first
    asked: list[str] = []
    second.on("dialog", lambda d: (asked.append(d.type), d.dismiss()))
    second.close(run_before_unload=True)
    first.wait_for_timeout(300)
    assert asked == ["beforeunload"]
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
    wait_for(page, "document.getElementById('status').textContent.includes('would be assigned')")
    assert page.locator("#plan-table tbody tr").count() == 1
    assert "c3" in page.locator("#plan-table tbody tr").first.inner_text()
    page.click("#apply")
    wait_for(page, "document.getElementById('status').textContent.includes('1 call(s) assigned')")

    page.click("text=Calibration")
    page.wait_for_url("**/calibrations")
    page.fill("#new-calibration input[name=name]", "November calibration")
    page.fill("#new-calibration input[name=call_id]", "c4")
    page.check("#new-calibration input[value=rita]")
    page.check("#new-calibration input[value=sam]")
    page.click("#create")
    page.wait_for_selector("text=November calibration")
    assert "Waiting for rita, sam" in page.inner_text("main")
    ctx.close()


def test_a_reviewer_disputes_the_leads_final_answer_and_the_lead_upholds_it(server, browser):  # noqa: F811
    from test_app import login

    answers = {"opening.greeting": {"answer": "yes"}, "closing.thanks": {"answer": "yes"}}
    sam, csrf = login(server, "sam")
    assert sam.put("/api/calls/c2/review", headers={"X-CSRF-Token": csrf},
                   json={"version": 0, "submit": True, "answers": answers}).status_code == 200
    lena, lcsrf = login(server, "lena")
    version = lena.get("/api/calls/c2").json()["review"]["version"]
    assert lena.put("/api/calls/c2/review", headers={"X-CSRF-Token": lcsrf}, json={
        "version": version, "submit": True, "final": True,
        "answers": {**answers, "closing.thanks": {"answer": "no", "comment": "no thanks heard"}}}).status_code == 200

    # the reviewer sees the lead's final review on his call and disputes one answer
    ctx, page = browser_login(server, browser, "sam")
    page.goto(server["url"] + "/calls/c2")
    final = page.locator(".submission", has=page.locator(".final"))
    assert "lena" in final.inner_text() and "counts for the KPIs" in final.inner_text()
    final.locator("button.dispute[data-trail-item='closing.thanks']").click()
    page.fill("#dispute-form textarea[name=reason]", "the agent thanks the customer at 0:55")
    page.select_option("#dispute-form select[name=proposed]", "yes")
    page.click("#dispute-send")
    page.wait_for_selector(".dispute-row")
    assert "open" in page.inner_text(".dispute-row .dispute-state") and page.locator(".dispute-row .uphold").count() == 0
    ctx.close()

    # the lead upholds it: the answer changes through a new final version, the old one stays
    ctx, page = browser_login(server, browser, "lena")
    page.goto(server["url"] + "/calls/c2")
    row = page.locator(".dispute-row")
    assert "the agent thanks the customer at 0:55" in row.inner_text() and "disputed by sam" in row.inner_text()
    row.locator(".resolve-comment").fill("heard it on the recording")
    row.locator(".uphold").click()
    page.locator(".dispute-row .dispute-state", has_text="upheld").wait_for()  # after the page reloads
    assert "heard it on the recording" in page.inner_text(".dispute-row")
    subs = page.locator(".submission")
    assert subs.count() == 3  # sam's, lena's disputed version, lena's version with the dispute upheld
    assert subs.nth(1).locator("[data-trail-item='closing.thanks'] .answer").inner_text() == "no"
    assert subs.nth(2).locator("[data-trail-item='closing.thanks'] .answer").inner_text() == "yes"
    assert subs.nth(2).locator(".counted").count() == 1
    ctx.close()


def test_the_policy_blocks_inline_script_and_the_watch_sees_it(server, browser):  # noqa: F811
    """The check above is not vacuous: a script written into a page is refused and reported."""
    page = browser.new_page()
    page.goto(server["url"] + "/login")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';
                             document.body.appendChild(s); }""")
    wait_for(page, "true")
    assert page.evaluate("window.injected") is None
    for _ in range(50):
        if browser.violations:
            break
        time.sleep(0.05)
    assert browser.violations and "script-src 'self'" in browser.violations[0]
    browser.violations.clear()
    page.context.close()


def test_wrong_passwords_lock_the_log_in_and_the_right_one_waits(guarded, browser):  # noqa: F811
    page = browser.new_page()
    page.goto(guarded["urls"][0] + "/login")
    for n in range(POLICY.login_max_failures_account):
        page.fill("input[name=username]", "rita")
        page.fill("input[name=password]", f"wrong-password-{n}")
        page.click("button[type=submit]")
        page.wait_for_selector("[role=alert]")
        expected = "Too many failed log-ins" if n == POLICY.login_max_failures_account - 1 else "Wrong user name"
        assert expected in page.inner_text("[role=alert]")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[role=alert]")
    assert "Too many failed log-ins" in page.inner_text("[role=alert]") and page.url.endswith("/login")
    page.context.close()
    ctx, other = browser_login({"url": guarded["urls"][0]}, browser, "sam")  # another name is not locked
    assert other.locator("h1").inner_text() == "My calls"
    ctx.close()


def test_the_transcript_and_evidence_play_by_keyboard_and_the_spoken_line_is_highlighted(server, browser):  # noqa: F811
    import numpy as np
    import soundfile as sf

    from pipeline.review.db import sessions
    from pipeline.review.loader import load_results
    from test_db import call_record, write_run

    rec = call_record("c8", {"opening.greeting": "yes"})
    rec["metadata"]["agent_id"] = "a9"  # agent a1's dashboard figures stay those of the other tests
    rec["pii"] = {"enabled": True, "redacted": True, "counts": {}, "spans": []}
    rec["utterances"] = [{"id": f"u{n}", "role": role, "speaker": f"S{n % 2}", "start": start, "end": end, "text": said}
                         for n, (role, start, end, said) in enumerate([
                             ("agent", 0.0, 1.5, "Thank you for calling, how can I help?"),
                             ("customer", 1.5, 3.0, "My bill is wrong this month."),
                             ("agent", 3.0, 6.0, "Let me look at that for you.")])]
    write_run(server["out"], [rec])
    t = np.arange(6 * 16000, dtype=np.float32) / 16000
    sf.write(str(server["out"] / "calls" / "c8" / "audio_redacted.wav"), 0.1 * np.sin(2 * np.pi * 440 * t), 16000,
             subtype="PCM_16")
    with sessions(server["engine"]).begin() as s:
        load_results(s, server["out"])

    ctx, page = browser_login(server, browser, "lena")
    page.set_viewport_size({"width": 900, "height": 360})  # short: the page scrolls
    page.goto(server["url"] + "/calls/c8")
    wait_for(page, "document.getElementById('player').readyState >= 1", timeout=10_000)
    current = "document.getElementById('player').currentTime"

    # every line and piece of evidence is a button with a name, reached by Tab
    assert page.get_by_role("button", name="My bill is wrong this month").count() == 1
    assert page.get_by_role("button", name="hello").count() == 1  # the evidence quote
    stops: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
        if stops[-1] == "u2":
            break
    assert stops[-1] == "u2" and {"u0", "u1"} <= set(stops)
    page.keyboard.press("Enter")  # plays from the line's start
    wait_for(page, f"{current} >= 3.0 && {current} < 5.0")  # from 0, paused, to u2
    wait_for(page, "document.getElementById('u2').classList.contains('speaking')")
    assert page.get_attribute("#u2", "aria-current") == "true"

    # Space on the first line plays from 0: the highlight follows the audio to the next line
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "u0"
    page.keyboard.press(" ")
    wait_for(page, f"{current} < 1.5 && document.getElementById('u0').getAttribute('aria-current') === 'true'")
    assert page.evaluate("document.querySelectorAll('#transcript .speaking').length") == 1
    wait_for(page, "document.getElementById('u1').classList.contains('speaking')", timeout=8_000)
    assert page.get_attribute("#u0", "aria-current") is None
    assert not page.evaluate("document.getElementById('player').paused")

    # evidence too: Tab on to it, Space plays from its time
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('ev')"):
            break
    page.evaluate("document.getElementById('player').pause()")
    page.keyboard.press(" ")
    wait_for(page, f"Math.abs({current} - 1.0) < 0.3")

    # the player stays in view at the top while the page scrolls
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    wait_for(page, "window.scrollY > 100")
    top = page.evaluate("document.getElementById('player').getBoundingClientRect().top")
    assert 0 <= top < 20
    assert page.evaluate("getComputedStyle(document.getElementById('player-bar')).position") == "sticky"

    # a coaching report's clip link (?t=SECONDS) opens the call cued at that moment
    page.goto(server["url"] + "/calls/c8?t=3.5")
    wait_for(page, f"Math.abs({current} - 3.5) < 0.3", timeout=10_000)
    speaking = "document.querySelector('#transcript .line.speaking')"
    wait_for(page, f"{speaking} !== null && {speaking}.textContent.includes('Let me look at that')")
    assert page.evaluate("document.querySelectorAll('#transcript .line.speaking').length") == 1
    ctx.close()
