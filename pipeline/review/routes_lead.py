"""For leads and admins: sampling calls for review, and calibration sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.db import User
from pipeline.review.hardening import MAX_INT, json_object, names, text, whole_number
from pipeline.review.web import Who, db_session, lead, lead_csrf, templates

router = APIRouter()


@router.post("/api/sample")
async def api_sample(request: Request, who: Who = Depends(lead_csrf),
                     s: Session = Depends(db_session)) -> JSONResponse:
    """Plan (``apply: false``) or make a sample: ``{per_agent, start, end, reviewers: [names],
    seed, low_confidence_min, apply}``."""
    from pipeline.errors import ConfigError
    from pipeline.review.sampling import assignment_rows, plan_sample

    body = await json_object(request, '{"per_agent": 2, "start": "2026-11-01", "end": "", "reviewers": '
                                      '["name"], "seed": 0, "low_confidence_min": 1, "apply": false}')
    if not isinstance(body.get("apply", False), bool):
        raise HTTPException(422, "apply: true or false")
    try:
        made = plan_sample(s, whole_number(body, "per_agent", 2), text(body, "start", 40) or None,
                           text(body, "end", 40) or None, names(body, "reviewers"),
                           whole_number(body, "seed", 0), whole_number(body, "low_confidence_min", 1),
                           created_by=who[0].id, apply=body.get("apply", False),
                           uncertain_share=request.app.state.options.uncertain_share,
                           recent_days=request.app.state.options.uncertain_recent_days)
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None
    rows = assignment_rows(s, made)
    if body.get("apply"):
        s.commit()
    return JSONResponse({"applied": bool(body.get("apply")), "assignments": rows})

@router.post("/api/calibrations")
async def api_new_calibration(request: Request, who: Who = Depends(lead_csrf),
                              s: Session = Depends(db_session)) -> JSONResponse:
    from pipeline.errors import ConfigError
    from pipeline.review.calibration import create_calibration

    body = await json_object(request, '{"name": "...", "call_id": "...", "reviewers": ["name", "name"]}')
    try:
        cal = create_calibration(s, text(body, "name"), text(body, "call_id"), names(body, "reviewers"),
                                 created_by=who[0].id)
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None
    s.commit()
    return JSONResponse({"id": cal.id})

@router.get("/api/calibrations/{cal_id}")
def api_calibration(cal_id: Annotated[int, FastPath(ge=1, le=MAX_INT)],
                    who: Who = Depends(lead), s: Session = Depends(db_session)) -> JSONResponse:
    from pipeline.errors import ConfigError
    from pipeline.review.calibration import calibration_result

    try:
        return JSONResponse(calibration_result(s, cal_id))
    except ConfigError as e:
        raise HTTPException(404, str(e)) from None

@router.get("/api/calibrations")
def api_calibration_report(who: Who = Depends(lead),
                           s: Session = Depends(db_session)) -> JSONResponse:
    from pipeline.review.calibration import calibration_report

    return JSONResponse(calibration_report(s))

@router.get("/sample", response_class=HTMLResponse)
def sample_page(request: Request, who: Who = Depends(lead),
                s: Session = Depends(db_session)) -> Response:
    reviewers = [u.username for u in s.scalars(select(User).where(User.role.in_(("reviewer", "lead")),
                                                                  User.active.is_(True)).order_by(User.username))]
    return templates.TemplateResponse(request, "sample.html", {
        "user": who[0], "csrf": who[1].csrf_token, "reviewers": reviewers})

CALIBRATIONS_PER_PAGE = 20


@router.get("/calibrations", response_class=HTMLResponse)
def calibrations_page(request: Request, who: Who = Depends(lead), s: Session = Depends(db_session)) -> Response:
    """The calibration report over every finished session, and the sessions newest first, a
    page at a time (``page``)."""
    from sqlalchemy import func

    from pipeline.review.calibration import calibration_report, calibration_result
    from pipeline.review.db import Calibration

    try:
        page = int(request.query_params.get("page") or 1)
    except ValueError:
        raise HTTPException(422, "page: a whole number") from None
    total = s.scalar(select(func.count()).select_from(Calibration)) or 0
    pages = max(1, -(-total // CALIBRATIONS_PER_PAGE))
    if not 1 <= page <= pages:
        raise HTTPException(422, f"page: from 1 to {pages}")
    shown = s.scalars(select(Calibration.id).order_by(Calibration.id.desc())
                      .limit(CALIBRATIONS_PER_PAGE).offset((page - 1) * CALIBRATIONS_PER_PAGE))
    results = [calibration_result(s, cal_id) for cal_id in shown]
    reviewers = [u.username for u in s.scalars(select(User).where(User.role.in_(("reviewer", "lead")),
                                                                  User.active.is_(True)).order_by(User.username))]
    return templates.TemplateResponse(request, "calibrations.html", {
        "user": who[0], "csrf": who[1].csrf_token, "results": results, "report": calibration_report(s),
        "reviewers": reviewers, "page": page, "pages": pages, "total": total})
