"""The leads' dashboard in a real browser (headless Debian Chromium through Playwright, as in
test_browser.py): the plotly.js charts draw under the app's Content-Security-Policy without a
single violation, and a click on a point, a bar or an agent opens the queue on the calls behind it;
the drift chart marks the item that dropped and the weeks with too few reviews."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from test_browser import browser, browser_login, no_csp_violation, wait_for  # noqa: F401  (fixtures)
from test_dashboard_charts import (  # noqa: F401  (fixtures)
    CALLS, NIGHT, REVIEWS, G, T, dash, db_url, drift_calls, drift_dash, drift_weeks, in_window, iso_week,
    postgres_url,
)

pytestmark = pytest.mark.slow  # drives a browser

CHARTS = ("chart-trend", "chart-teams", "chart-agreement", "chart-drift")

# the drift chart's traces and points, as plotly.js drew them: each line's width, and each
# point's fill (none: hollow), edge colour and size
DRIFT_DRAWN = """Array.from(document.querySelectorAll('#chart-drift .scatterlayer .trace')).map(function (t) {
  var line = t.querySelector('.js-line');
  return {line: line ? parseFloat(line.style.strokeWidth) : null,
          points: Array.from(t.querySelectorAll('.points path')).map(function (p) {
            var box = p.getBoundingClientRect();
            return {fill: p.style.fill, stroke: p.style.stroke, size: Math.round(box.width)};
          })};
})"""


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
    from pipeline.learning.drift import MIN_N

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
    # (4) one line per item of its weekly agreement; a week or two of four reviews each is too few
    # for the drift test: every point hollow, no item dropped
    drift = page.locator("#chart-drift")
    assert drift.locator(".legendtext").all_text_contents() == [G, T]
    drawn = page.evaluate(DRIFT_DRAWN)
    per_week = Counter(iso_week(c[3]) for c in CALLS if c[0] in REVIEWS and in_window(c[3]))
    assert max(per_week.values()) < MIN_N
    assert [len(t["points"]) for t in drawn] == [len(per_week)] * 2
    assert all(p["fill"] == "none" for t in drawn for p in t["points"])
    assert drawn[0]["line"] == drawn[1]["line"]
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


def test_the_drift_chart_shows_the_drop_and_the_weeks_with_too_few_answers(drift_dash, browser):  # noqa: F811
    from pipeline.learning.drift import MIN_N, drift_alerts

    ctx, page = open_dashboard(drift_dash, browser, "?period=all")
    weeks = drift_weeks()
    dropped = {a["item"]: a for a in drift_alerts(weeks)}  # the drift test on the counts, by itself
    assert list(dropped) == [G]
    drift = page.locator("#chart-drift")
    assert drift.locator(".scatterlayer .trace").count() == 2
    assert drift.locator(".legendtext").all_text_contents() == [f"{G} (dropped)", T]
    drawn = page.evaluate(DRIFT_DRAWN)
    greeting, thanks = drawn
    assert greeting["line"] > thanks["line"]  # the item that dropped stands out
    for item, trace in zip((G, T), drawn):
        assert len(trace["points"]) == len(weeks[item])
        for week, point in zip(weeks[item], trace["points"]):
            alerting = item in dropped and week["period"] == dropped[item]["week"]
            # a week with fewer answers than the test needs is hollow; the week that dropped, a big red-edged mark
            assert (point["fill"] == "none") == (week["n"] < MIN_N and not alerting), (item, week, point)
            assert (point["stroke"] == "rgb(179, 38, 30)") == alerting, (item, week, point)
        plain = [p["size"] for w, p in zip(weeks[item], trace["points"]) if item not in dropped
                 or w["period"] != dropped[item]["week"]]
        if item in dropped:
            assert trace["points"][-1]["size"] > max(plain)
    assert any(w["n"] < MIN_N for w in weeks[T])  # not vacuous
    # hovering a point tells its week, agreement and n; a thin week says it is too few to test
    points = drift.locator(".scatterlayer .trace")

    def hover(trace: int, n: int) -> str:
        point = points.nth(trace).locator(".points path").nth(n)
        point.scroll_into_view_if_needed()
        box = point.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        wait_for(page, "document.querySelector('#chart-drift .hoverlayer .hovertext') !== null")
        text = page.locator("#chart-drift .hoverlayer").text_content()
        page.mouse.move(5, 5)
        wait_for(page, "document.querySelector('#chart-drift .hoverlayer .hovertext') === null")
        return text

    thin = next(n for n, w in enumerate(weeks[T]) if w["n"] < MIN_N)
    w = weeks[T][thin]
    said = hover(1, thin)
    assert f"{T} · {w['period']}: {round(100 * w['agreed'] / w['n'])}% right" in said
    assert f"{w['agreed']} of n = {w['n']} reviewed answers" in said and "too few to test" in said
    last = weeks[G][-1]
    said = hover(0, len(weeks[G]) - 1)
    assert f"{G} · {last['period']}: {round(100 * last['agreed'] / last['n'])}% right" in said
    assert f"n = {last['n']} reviewed answers" in said and "dropped from" in said and "too few" not in said
    # a click on the week that dropped opens that item's reviewed calls of the week
    click_centre(page, points.nth(0).locator(".points path").last)
    page.wait_for_url("**/?*item=opening.greeting*")
    sunday = (date.fromisoformat(last["start"]) + timedelta(days=6)).isoformat()
    assert query_of(page.url) == {"date_from": last["start"], "date_to": sunday, "item": G, "reviewed": "yes"}
    assert queue_ids(page) == sorted(cid for cid, day, _, _ in drift_calls() if last["start"] <= day <= sunday)
    assert len(queue_ids(page)) == last["n"]
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
