"""For leads and admins: the Voice-of-the-Customer insights (``callqa insights``) and the
manager report with its coaching pages (``callqa report``), built on request from the insight
store of a results folder the database holds calls of, the same pages the commands write.

The folder is one the database knows (``?out=`` picks among them; by default the one with the
most calls): a page never reads a folder a user names. Its store
(``OUT/.callqa-insights.sqlite``) is brought up to date first (new and changed calls only); the
nightly ``callqa insights`` keeps it current, so a page seldom has much to add."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.errors import CallqaError
from pipeline.review.db import Call
from pipeline.review.hardening import report_page
from pipeline.review.web import Who, db_session, lead

router = APIRouter()


def results_folder(s: Session, out: str | None) -> Path:
    """The results folder of the pages: ``out`` if the database holds calls from it, else (no
    ``out``) the folder with the most calls; 404 otherwise."""
    counts = s.execute(select(Call.out_dir, func.count()).group_by(Call.out_dir)
                       .order_by(func.count().desc(), Call.out_dir)).all()
    if not counts:
        raise HTTPException(404, "no results loaded: load a run with 'callqa db load OUT' first")
    if out is None:
        return Path(counts[0][0])
    if out not in {folder for folder, _ in counts}:
        raise HTTPException(404, "not a results folder of this database")
    return Path(out)


def _config(request: Request) -> Any:
    """The server's config (loaded once, on first use)."""
    from pipeline.config import load_config

    state = request.app.state
    if getattr(state, "insights_config", None) is None:
        state.insights_config = load_config(getattr(state, "config_file", None))
    return state.insights_config


def _store(folder: Path) -> Any:
    from pipeline.insights.store import InsightStore

    try:
        store = InsightStore.updated(folder)
    except CallqaError as e:
        raise HTTPException(503, str(e)) from None
    return store


@router.get("/insights")
def insights_page(request: Request, out: str | None = None, start: str | None = None, to: str | None = None,
                  who: Who = Depends(lead), s: Session = Depends(db_session)) -> Response:
    """The insights page of [start, to] (ISO days, ``to`` included; default: the 28 days up to
    the newest interaction)."""
    from datetime import date, timedelta

    from pipeline.insights.html import render_html
    from pipeline.insights.topics import update_topics
    from pipeline.insights.voc import InsightsError, insights, parse_day

    folder = results_folder(s, out)
    config = _config(request)
    try:
        parse_day(start, "start")
        last: date | None = parse_day(to, "to")
    except InsightsError as e:
        raise HTTPException(422, str(e)) from None
    store = _store(folder)
    try:
        update_topics(store, config.insights.topics)
        data = insights(store, config.insights, start, (last + timedelta(days=1)).isoformat() if last else None,
                        negative_threshold=config.sentiment.negative_threshold)
    except (InsightsError, CallqaError) as e:
        raise HTTPException(422, str(e)) from None
    finally:
        store.close()
    return report_page(render_html(data))


@router.get("/reports")
def reports_root(request: Request, who: Who = Depends(lead)) -> Response:
    query = request.url.query
    return RedirectResponse("/reports/" + (f"?{query}" if query else ""), status_code=307)


def _report(request: Request, s: Session, out: str | None, period: str, end: str | None, team: str | None) -> dict:
    from pipeline.insights.report import build_report

    folder = results_folder(s, out)
    store = _store(folder)
    try:
        return build_report(store, _config(request), period, end=end, team=team, out_dir=folder)
    except CallqaError as e:
        raise HTTPException(422, str(e)) from None
    finally:
        store.close()


@router.get("/reports/")
def report_page_route(request: Request, out: str | None = None, period: str = "week", end: str | None = None,
                      team: str | None = None, who: Who = Depends(lead), s: Session = Depends(db_session)) -> Response:
    """The manager report of the ``period`` (day, week, month) ending ``end`` (default: the
    newest interaction's), for ``team`` (default: every team)."""
    from pipeline.insights.report import render_report_html

    if period not in ("day", "week", "month"):
        raise HTTPException(422, "period: day, week or month")
    data = _report(request, s, out, period, end, team)
    query = request.url.query
    return report_page(render_report_html(data, coaching_href="coaching/{file}" + (f"?{query}" if query else "")))


@router.get("/reports/coaching/{file}")
def coaching_page(request: Request, file: str, out: str | None = None, period: str = "week", end: str | None = None,
                  team: str | None = None, who: Who = Depends(lead), s: Session = Depends(db_session)) -> Response:
    """One agent's coaching page in the report of the same period."""
    from pipeline.insights.report import agent_file, render_coaching_html

    if period not in ("day", "week", "month"):
        raise HTTPException(422, "period: day, week or month")
    data = _report(request, s, out, period, end, team)
    agent = next((a["agent_id"] for a in data["agents"] if agent_file(a["agent_id"]) == file), None)
    if agent is None:
        raise HTTPException(404, "no such agent in this report")
    return report_page(render_coaching_html(data, agent))
