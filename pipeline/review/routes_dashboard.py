"""For leads and admins: the dashboards (agents, channels, trends, automatic-vs-human agreement,
CSV), over calls and written conversations alike: ``channel`` (``voice``, ``email``, ``chat``)
filters every figure as ``team`` and ``agent`` do, and the KPIs and trends are also split by
channel (``channels``, ``channel_trends``).

The dashboard page draws its charts in the browser with plotly.js, the copy that the installed
``plotly`` Python package ships (``plotly/package_data/plotly.min.js``), served from here at
``/vendor/plotly.min.js``: nothing comes from another site. The chart data travels in a
``<script type="application/json">`` block, with the queue URL each point, agent and item leads
to (the drill-down), so the page runs under the app's Content-Security-Policy unchanged."""

from __future__ import annotations

import calendar
import gzip
import hashlib
import json
import math
import re
from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.db import CHANNELS, Call
from pipeline.review.web import Who, db_session, lead, templates

router = APIRouter()

FILTER_KEYS = ("start", "end", "team", "agent", "channel", "bucket", "period", "sort", "order")
PERIODS = (("30d", "last 30 days"), ("90d", "last 90 days"), ("365d", "last 365 days"), ("all", "all time"))
SORT_KEYS = ("agent", "calls", "mean_score", "reviewed_calls", "mean_reviewed_score", "pass_rate", "auto_fails",
             "sentiment")
"""The agents table's columns a lead can sort by (``sort``, see :func:`dashboard_data`)."""
JS_TYPE = "text/javascript; charset=utf-8"
YEAR = "public, max-age=31536000, immutable"


CHANNEL_TITLES = {"voice": "calls", "email": "e-mail", "chat": "chat"}
"""How the dashboard names each channel."""


def period(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in FILTER_KEYS}


# --- plotly.js, from the installed plotly package ------------------------------------------------

@lru_cache(maxsize=1)
def plotly_js() -> tuple[bytes, str]:
    """The bytes of plotly.min.js as the installed ``plotly`` package ships it, and their ETag."""
    from importlib.resources import files

    data = (files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


@lru_cache(maxsize=1)
def plotly_js_gzip() -> bytes:
    return gzip.compress(plotly_js()[0], compresslevel=6, mtime=0)


@lru_cache(maxsize=1)
def plotly_style_ids() -> tuple[str, ...]:
    """The ids of the ``<style>`` elements plotly.js writes on loading unless an element with
    that id is there already (the map traces' stylesheet): the page puts an empty element with
    each id, so that plotly.js tries no inline style, which the app's policy would refuse."""
    text = plotly_js()[0].decode("utf-8", "replace")
    found = re.findall(r'getElementById\("([\w-]+)"\)\)\{var \w+=document\.createElement\("style"\)', text)
    return tuple(dict.fromkeys(found))


def plotly_version() -> str:
    """The script's version in its URL (``/vendor/plotly.min.js?v=...``): a hash of its content, so
    a year of caching never serves an old copy."""
    return plotly_js()[1].strip('"')[:12]


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not re.fullmatch(r"q\s*=\s*0(\.0*)?", q)
    return False


@router.get("/vendor/plotly.min.js")
def plotly_script(request: Request) -> Response:
    """plotly.js (public: a published library, no data), cached for a year, gzipped when the
    browser takes it."""
    data, etag = plotly_js()
    headers = {"Cache-Control": YEAR, "ETag": etag, "Vary": "Accept-Encoding"}
    if etag in [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(plotly_js_gzip(), media_type=JS_TYPE, headers={**headers, "Content-Encoding": "gzip"})
    return Response(data, media_type=JS_TYPE, headers=headers)


# --- drill-down: the queue URLs of a period, an agent, an item ------------------------------------

def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "")[:10])
    except ValueError:
        return None


def window(data: dict[str, Any], f: dict[str, str]) -> dict[str, Any]:
    """The period shown: ``data["period"]`` when dashboard_data gives it, else the ``start`` and
    ``end`` asked for; ``date_from``/``date_to`` are the queue's (both days included), "" when open."""
    given = data.get("period") if isinstance(data.get("period"), dict) else {}
    start, end = given.get("start") or f.get("start") or "", given.get("end") or f.get("end") or ""
    first, stop = _day(start), _day(end)
    if given.get("last_day"):
        last: date | None = _day(given["last_day"])
    elif stop is not None and len(end) <= 10:  # a day given as the (exclusive) end: the day before is the last
        last = stop - timedelta(days=1)
    else:
        last = stop
    label = given.get("label") or (f"{start or '…'} – {end or '…'}" if start or end else "all time")
    return {"start": start, "end": end, "label": label, "date_from": first.isoformat() if first else "",
            "date_to": last.isoformat() if last else ""}


def queue_url(**params: str | None) -> str:
    """The queue page with the filters that are set; ``period=all`` when no date is (the queue
    would otherwise open on its default window)."""
    if not params.get("date_from") and not params.get("date_to"):
        params["period"] = "all"
    return "/?" + urlencode([(k, v) for k, v in params.items() if v])


def _bucket_last_day(row: dict[str, Any], bucket: str) -> date | None:
    """The last day of a trend row's period: told by its label (2026-11-03, 2026-W45, 2026-11),
    else by the bucket asked for."""
    first = _day(row.get("start"))
    if first is None:
        return None
    label = str(row.get("period") or "")
    kind = ("day" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", label) else "week" if re.fullmatch(r"\d{4}-W\d{2}", label)
            else "month" if re.fullmatch(r"\d{4}-\d{2}", label) else bucket)
    if kind == "week":
        return first + timedelta(days=6)
    if kind == "month":
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first


def period_url(row: dict[str, Any], win: dict[str, Any], bucket: str, agent: str | None,
               team: str | None, channel: str | None = None) -> str | None:
    """The queue of one trend row's calls: its days (cut to the window shown), agent, team and
    channel."""
    first, last = _day(row.get("start")), _bucket_last_day(row, bucket)
    if first is None or last is None:
        return None
    if win["date_from"] and first.isoformat() < win["date_from"]:
        first = date.fromisoformat(win["date_from"])
    if win["date_to"] and last.isoformat() > win["date_to"]:
        last = date.fromisoformat(win["date_to"])
    return queue_url(agent=agent, queue=team, channel=channel, date_from=first.isoformat(),
                     date_to=last.isoformat())


def dashboard_url(f: dict[str, str], **changes: str) -> str:
    return "/dashboard?" + urlencode([(k, v) for k, v in {**f, **changes}.items() if v])


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity made None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _series(rows: list[dict[str, Any]], win: dict[str, Any], bucket: str, agent: str | None,
            team: str | None, channel: str | None = None) -> list[dict[str, Any]]:
    keys = ("period", "start", "calls", "mean_score", "reviewed_calls", "mean_reviewed_score", "pass_rate")
    return [{**{k: r.get(k) for k in keys}, "url": period_url(r, win, bucket, agent, team, channel)} for r in rows]


def week_url(row: dict[str, Any], win: dict[str, Any], item: str, agent: str | None, team: str | None,
             channel: str | None = None) -> str | None:
    """The queue of the reviewed calls behind one week of an item's agreement: that item's
    calls with a review that counts, of the agent, team and channel, from the week's Monday
    (the week is counted whole even where it begins before the window shown) to its Sunday, or
    to the window's last day when the window ends first."""
    first = _day(row.get("start"))
    if first is None:
        return None
    last = first + timedelta(days=6)
    if win["date_to"] and last.isoformat() > win["date_to"]:
        last = date.fromisoformat(win["date_to"])
    return queue_url(agent=agent, queue=team, channel=channel, date_from=first.isoformat(),
                     date_to=last.isoformat(), item=item, reviewed="yes")


def drift_chart(drift: dict[str, Any] | None, win: dict[str, Any], agent: str | None, team: str | None,
                channel: str | None = None) -> dict[str, Any]:
    """The chart of :func:`pipeline.review.dashboards.agreement_drift`: ``{"min_n", "items":
    [{"item", "alert" (its alert, or None), "weeks": [{"period", "start", "n", "agreed",
    "agreement", "few" (fewer reviewed answers than the drift test needs), "alert" (the week
    its alert is about), "url" (the queue of those reviewed calls)}, ...]}, ...]}``, items in
    the table's order."""
    drift = drift or {}
    min_n = drift.get("min_n")
    alerts = {a["item"]: a for a in drift.get("alerts") or []}
    items = []
    for item, weeks in (drift.get("weekly") or {}).items():
        alert = alerts.get(item)
        items.append({
            "item": item,
            "alert": ({k: alert.get(k) for k in ("week", "n", "agreement", "baseline_agreement", "baseline_n", "p")}
                      if alert else None),
            "weeks": [{**{k: w.get(k) for k in ("period", "start", "n", "agreed", "agreement")},
                       "few": min_n is not None and (w.get("n") or 0) < min_n,
                       "alert": alert is not None and w.get("period") == alert.get("week"),
                       "url": week_url(w, win, item, agent, team, channel)} for w in weeks],
        })
    return {"min_n": min_n, "items": items}


def dashboard_view(s: Session, data: dict[str, Any], f: dict[str, str]) -> dict[str, Any]:
    """What the page shows beside ``data``: the window, the teams and agents to choose from,
    the drill-down URLs, and the charts' data (``charts``, sent to the page as JSON)."""
    win = window(data, f)
    bucket = f.get("bucket") or "week"
    agent, team, channel = f.get("agent") or None, f.get("team") or None, f.get("channel") or None
    teams = [q for q in s.scalars(select(Call.queue).where(Call.queue.is_not(None)).distinct().order_by(Call.queue))]
    agents = [a for a in s.scalars(select(Call.agent_id).where(Call.agent_id.is_not(None)).distinct()
                                   .order_by(Call.agent_id))]
    dates = {"date_from": win["date_from"], "date_to": win["date_to"]}
    agent_links = {a["agent_id"]: {"calls": queue_url(agent=a["agent_id"], queue=team, channel=channel, **dates),
                                   "trend": dashboard_url(f, agent=a["agent_id"])}
                   for a in data.get("agents", []) if a.get("agent_id") is not None}
    items = list(data["agents"][0]["pass_rates"]) if data.get("agents") else []
    item_links = {item: queue_url(queue=team, channel=channel, **dates, item=item, answer="no") for item in items}
    cell_links = {a["agent_id"]: {item: queue_url(agent=a["agent_id"], queue=team, channel=channel, **dates,
                                                  item=item, answer="no")
                                  for item in items}
                  for a in data.get("agents", []) if a.get("agent_id") is not None}
    agreement_links = {item: queue_url(agent=agent, queue=team, channel=channel, **dates, item=item, answer="no")
                       for item in data.get("agreement", {})}
    channel_links = {c["channel"]: {"calls": queue_url(agent=agent, queue=team, channel=c["channel"], **dates),
                                    "dashboard": dashboard_url(f, channel=c["channel"]),
                                    "items": {item: queue_url(agent=agent, queue=team, channel=c["channel"], **dates,
                                                              item=item, answer="no")
                                              for item in c.get("pass_rates", {})}}
                     for c in data.get("channels", [])}
    trend_rows = _series(data.get("trend", []), win, bucket, agent, team, channel)
    by_team = {name: _series(rows, win, bucket, agent, name, channel)
               for name, rows in (data.get("team_trends") or {}).items() if name is not None}
    team_measure = ("pass_rate" if any(r.get("pass_rate") is not None for rows in by_team.values() for r in rows)
                    else "mean_score")
    by_channel = {name: _series(rows, win, bucket, agent, team, name)
                  for name, rows in (data.get("channel_trends") or {}).items() if name is not None}
    scope = " · ".join(p for p in (f"agent {agent}" if agent else "all agents", f"team {team}" if team else "",
                                   CHANNEL_TITLES.get(channel, channel) if channel else "")
                       if p)
    charts = _finite({
        "window": win, "scope": scope, "bucket": bucket,
        "trend": trend_rows,
        "teams": by_team, "team_measure": team_measure,
        "channels": by_channel, "channel_titles": CHANNEL_TITLES,
        "agreement": [{"item": item, "n": a.get("n"), "accuracy": a.get("accuracy"), "kappa": a.get("kappa"),
                       "url": agreement_links[item]} for item, a in data.get("agreement", {}).items()],
        "drift": drift_chart(data.get("agreement_drift"), win, agent, team, channel),
    })
    current = f.get("sort") or "agent"
    flip = "asc" if f.get("order") == "desc" else "desc"
    sort_links = {key: dashboard_url(f, sort=key, order=flip if key == current else "asc") for key in SORT_KEYS}
    return {"window": win, "teams": teams, "agents": agents, "periods": PERIODS, "sort_links": sort_links,
            "agent_links": agent_links, "channel_choices": [(c, CHANNEL_TITLES[c]) for c in CHANNELS],
            "channel_links": channel_links, "channel_titles": CHANNEL_TITLES,
            "item_links": item_links, "cell_links": cell_links, "agreement_links": agreement_links,
            "trend": trend_rows, "charts": charts, "bucket": bucket}


# --- routes ---------------------------------------------------------------------------------------

@router.get("/api/dashboard")
def api_dashboard(request: Request, who: Who = Depends(lead),
                  s: Session = Depends(db_session)) -> JSONResponse:
    return JSONResponse(dashboard_data(s, period(request)))

@router.get("/dashboard.csv")
def dashboard_csv(request: Request, who: Who = Depends(lead),
                  s: Session = Depends(db_session)) -> Response:
    """The agents' KPIs as CSV (``agents.csv``); ``rows=channels``: the channels' (``channels.csv``)."""
    from pipeline.review.dashboards import to_csv

    rows_of = request.query_params.get("rows") or "agents"
    if rows_of not in ("agents", "channels"):
        raise HTTPException(422, "rows: agents or channels")
    rows = dashboard_data(s, period(request))[rows_of]
    return Response(to_csv(rows), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{rows_of}.csv"'})

@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, who: Who = Depends(lead),
                   s: Session = Depends(db_session)) -> Response:
    f = period(request)
    data = dashboard_data(s, f)
    view = dashboard_view(s, data, f)
    charts_json = json.dumps(view["charts"], allow_nan=False).replace("<", "\\u003c")  # no "</script>" inside
    return templates.TemplateResponse(request, "dashboard.html", {
        "user": who[0], "csrf": who[1].csrf_token, "data": data, "f": f, "view": view,
        "charts_json": charts_json, "plotly_version": plotly_version(), "plotly_style_ids": plotly_style_ids(),
        "query": str(request.url.query)})


def dashboard_data(s: Session, f: dict[str, str], pass_mark: float = 0.8) -> dict[str, Any]:
    """Agent KPIs, the same KPIs per channel, the trends (of the scope, per team and per
    channel) and automatic-vs-human agreement for a window (``start``/``end``, else ``period``:
    the last 30 days with calls by default; see :mod:`pipeline.review.periods`), team (queue),
    agent and channel (``voice``, ``email``, ``chat``; 422 for another). ``agents`` sorted by
    ``sort`` (``agent``, ``calls``, ``mean_score``, ``reviewed_calls``, ``mean_reviewed_score``,
    ``pass_rate``, ``auto_fails``, ``sentiment``) and ``order`` (``asc``/``desc``); ``channels``
    (the KPIs of each channel, of the agent when one is chosen) in the order voice, email, chat."""
    from pipeline.errors import ConfigError
    from pipeline.review import periods
    from pipeline.review.dashboards import (
        agent_kpis, agreement_by_item, agreement_drift, channel_kpis, channel_trends, team_trends, trend,
    )

    team, agent, bucket = f.get("team") or None, f.get("agent") or None, f.get("bucket") or "week"
    channel = f.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise HTTPException(422, f"channel: one of {', '.join(CHANNELS)}")
    try:
        window = periods.resolve(s, f.get("period") or None, f.get("start") or None, f.get("end") or None)
        start, end = window.start, window.end
        agents = agent_kpis(s, start, end, team, pass_mark, channel=channel)
        return {
            "period": window.to_dict(),
            "pass_mark": pass_mark,
            "channel": channel,
            "agents": sort_agents(agents, f.get("sort") or "agent", f.get("order") or "asc"),
            "channels": channel_kpis(s, start, end, team, agent, pass_mark, channel=channel),
            "trend": trend(s, agent, bucket, start, end, team, pass_mark, channel=channel),
            "team_trends": team_trends(s, bucket, start, end, agent, pass_mark, channel=channel),
            "channel_trends": channel_trends(s, bucket, start, end, team, agent, pass_mark, channel=channel),
            "agreement": agreement_by_item(s, start, end, team, agent, channel=channel),
            # per item per week, and an alert when an item's agreement drops (pipeline/learning/drift.py)
            "agreement_drift": agreement_drift(s, start, end, team, agent, channel=channel),
        }
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None


AGENT_SORTS = {"agent": "agent_id", "calls": "calls", "mean_score": "mean_score", "reviewed_calls": "reviewed_calls",
               "mean_reviewed_score": "mean_reviewed_score", "pass_rate": "pass_rate", "auto_fails": "auto_fails",
               "sentiment": "mean_customer_sentiment_end"}


def sort_agents(rows: list[dict[str, Any]], sort: str, order: str) -> list[dict[str, Any]]:
    """The agent rows sorted by a column of :data:`AGENT_SORTS` (empty values last either way,
    ties by agent id). ConfigError for another column or order."""
    from pipeline.errors import ConfigError

    if sort not in AGENT_SORTS or order not in ("asc", "desc"):
        raise ConfigError(f"sort: one of {', '.join(AGENT_SORTS)}; order: asc or desc")
    key = AGENT_SORTS[sort]
    present = sorted((r for r in rows if r[key] is not None), key=lambda r: r["agent_id"] or "")
    present.sort(key=lambda r: r[key], reverse=order == "desc")
    return present + [r for r in rows if r[key] is None]
