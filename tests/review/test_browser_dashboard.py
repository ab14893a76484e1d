"""The leads' dashboard in a real browser (headless Debian Chromium through Playwright, as in
test_browser.py): the plotly.js charts draw under the app's Content-Security-Policy without a
single violation, and a click on a point, a bar or an agent opens the queue on the calls behind it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from test_browser import browser, browser_login, no_csp_violation, wait_for  # noqa: F401  (fixtures)
from test_dashboard_charts import CALLS, NIGHT, dash, db_url, postgres_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow  # drives a browser

CHARTS = ("chart-trend", "chart-teams", "chart-agreement")


def open_dashboard(dash: dict, browser, query: str = ""):  # noqa: ANN001, ANN201 - playwright objects
    """The lead's dashboard page (``query`` appended), once every chart is drawn."""
    ctx, page = browser_login(dash, browser, "lena")
    page.set_viewport_size({"width": 1300, "height": 900})
    page.goto(dash["url"] + "/dashboard" + query)
    for chart in CHARTS:
        wait_for(page, f"document.querySelector('#{chart}[data-rendered=\"1\"] svg.main-svg') !== null",
                 timeout=15_000)
    return ctx, page


def click_centre(page, locator) -> None:  # noqa: ANN001 - playwright objects
    """A real mouse click in the middle of what ``locator`` shows (a point or a bar of a chart)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def queue_ids(page) -> list[str]:  # noqa: ANN001
    return sorted(page.locator("#queue tbody tr td:first-child a").all_inner_texts())


def test_the_charts_draw_under_the_policy(dash, browser):  # noqa: F811
    ctx, page = open_dashboard(dash, browser)
    assert page.evaluate("typeof window.Plotly") == "object"
    # plotly.js wrote no stylesheet of its own (the policy would refuse it): its rules are the linked file's
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert page.evaluate("getComputedStyle(document.querySelector('#chart-trend svg.main-svg')).position") == "absolute"
    for chart in CHARTS:
        assert page.locator(f"#{chart} svg.main-svg").count() >= 1
    # (1) the calls as four weekly bars under three lines: automatic score, reviewed score, pass rate
    trend = page.locator("#chart-trend")
    assert trend.locator(".barlayer .point").count() == 4
    assert trend.locator(".scatterlayer .trace").count() == 3
    legend = trend.locator(".legendtext").all_text_contents()
    assert legend == ["calls", "automatic score", "reviewed score", "pass rate"]
    # (2) one line per team, the names shown as written (no markup read into them)
    teams = page.locator("#chart-teams")
    assert sorted(teams.locator(".legendtext").all_text_contents()) == sorted(["billing", "support", NIGHT])
    assert teams.locator(".scatterlayer .trace").count() == 3
    # (3) one horizontal bar per item, the first item on top
    bars = page.locator("#chart-agreement .barlayer .point")
    assert bars.count() == 2
    ticks = page.locator("#chart-agreement .ytick text")
    assert sorted(ticks.all_text_contents()) == ["closing.thanks", "opening.greeting"]
    on_top = min(range(2), key=lambda n: ticks.nth(n).bounding_box()["y"])
    assert ticks.nth(on_top).text_content() == "opening.greeting"  # the template's order, from the top
    first, second = (bars.nth(n).bounding_box() for n in (0, 1))  # opening.greeting's bar, then closing.thanks'
    assert first["y"] < second["y"] and first["width"] > first["height"]  # horizontal, readable
    # hovering a point tells its period and value
    click_target = trend.locator(".scatterlayer .trace").first.locator(".points path").nth(1)
    box = click_target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_for(page, "document.querySelector('#chart-trend .hoverlayer .hovertext') !== null")
    assert "2026-W46: automatic score" in page.locator("#chart-trend .hoverlayer").text_content()
    ctx.close()


def test_a_click_on_a_point_opens_that_periods_calls(dash, browser):  # noqa: F811
    ctx, page = open_dashboard(dash, browser)
    # the automatic score of week 46 (Monday 9 to Sunday 15 November)
    point = page.locator("#chart-trend .scatterlayer .trace").first.locator(".points path").nth(1)
    click_centre(page, point)
    page.wait_for_url("**/?*date_from=2026-11-09*")
    assert query_of(page.url) == {"date_from": "2026-11-09", "date_to": "2026-11-15"}
    assert queue_ids(page) == sorted(c[0] for c in CALLS if "2026-11-09" <= c[3] <= "2026-11-15")
    # a team's point opens that team's calls of the week
    page.goto(dash["url"] + "/dashboard")
    wait_for(page, "document.querySelector('#chart-teams[data-rendered=\"1\"]') !== null", timeout=15_000)
    support = page.locator("#chart-teams .scatterlayer .trace").nth(2)  # billing, the night team, support
    click_centre(page, support.locator(".points path").first)
    page.wait_for_url("**/?*queue=support*")
    assert query_of(page.url) == {"queue": "support", "date_from": "2026-11-02", "date_to": "2026-11-08"}
    assert queue_ids(page) == ["s01"]
    ctx.close()


def test_a_click_on_a_bar_opens_its_calls(dash, browser):  # noqa: F811
    ctx, page = open_dashboard(dash, browser, "?team=billing")
    click_centre(page, page.locator("#chart-trend .barlayer .point path").last)  # the week of Monday 23rd
    page.wait_for_url("**/?*date_from=2026-11-23*")
    assert query_of(page.url) == {"queue": "billing", "date_from": "2026-11-23", "date_to": "2026-11-27"}
    assert queue_ids(page) == ["b05", "b06", "b09"]
    page.go_back()
    wait_for(page, "document.querySelector('#chart-agreement[data-rendered=\"1\"]') !== null", timeout=15_000)
    click_centre(page, page.locator("#chart-agreement .barlayer .point path").first)  # opening.greeting
    page.wait_for_url("**/?*item=opening.greeting*")
    assert query_of(page.url) == {"queue": "billing", "date_from": "2026-10-29", "date_to": "2026-11-27",
                                  "item": "opening.greeting", "answer": "no"}
    # b02's "no" was reviewed to "yes", b03's "yes" to "no"
    assert queue_ids(page) == ["b03", "b05", "b07", "b09"]
    assert "item opening.greeting answered no" in page.inner_text("#filters")
    ctx.close()


def test_an_agent_link_opens_their_calls_and_their_trend(dash, browser):  # noqa: F811
    ctx, page = open_dashboard(dash, browser)
    page.click("tr[data-agent=a2] a.agent-calls")
    page.wait_for_url("**/?agent=a2*")
    assert page.input_value("#filters input[name=agent]") == "a2"
    assert queue_ids(page) == ["b07", "b08", "b09", "n01"]
    page.go_back()
    page.click("tr[data-agent=a2] a.agent-trend")
    page.wait_for_url("**/dashboard?agent=a2")
    wait_for(page, "document.querySelector('#chart-trend[data-rendered=\"1\"]') !== null", timeout=15_000)
    assert "agent a2" in page.inner_text("#chart-trend-title")
    assert page.locator("#agent option:checked").inner_text() == "a2"
    assert page.locator("#chart-trend .barlayer .point").count() == 4  # a2 has a call in each week
    ctx.close()


def test_the_period_picker(dash, browser):  # noqa: F811
    ctx, page = open_dashboard(dash, browser)
    page.fill("#start", "2026-11-10")  # a date by hand: the period becomes "the dates below"
    page.dispatch_event("#start", "change")
    assert page.input_value("#period-choice") == ""
    page.fill("#end", "2026-11-14")
    page.select_option("#bucket", "day")
    page.click("#dash-filters button")
    page.wait_for_url("**/dashboard?*start=2026-11-10*")
    wait_for(page, "document.querySelector('#chart-trend[data-rendered=\"1\"]') !== null", timeout=15_000)
    assert page.locator("#chart-trend .barlayer .point").count() == 4  # 10, 11, 12 and 13 November
    page.select_option("#period-choice", "365d")  # a period empties the dates
    assert page.input_value("#start") == "" and page.input_value("#end") == ""
    page.click("#dash-filters button")
    page.wait_for_url("**/dashboard?period=365d*")
    wait_for(page, "document.querySelector('#chart-trend[data-rendered=\"1\"]') !== null", timeout=15_000)
    assert "the last 365 days" in page.inner_text("#window")
    ctx.close()
