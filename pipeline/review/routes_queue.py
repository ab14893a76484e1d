"""The queue: the calls a user may open, filtered, sorted and a page at a time, and their to-do
list of assigned calls not submitted yet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.review.db import Assignment, Call, Review, User
from pipeline.review.web import Who, current, db_session, templates, visible_calls

router = APIRouter()


def queue_rows(s: Session, user: User, f: dict[str, str]) -> list[dict[str, Any]]:
    q = visible_calls(user)
    if f.get("agent"):
        q = q.where(Call.agent_id == f["agent"])
    if f.get("queue"):
        q = q.where(Call.queue == f["queue"])
    if f.get("date_from"):
        q = q.where(Call.started_at >= f["date_from"])
    if f.get("date_to"):
        q = q.where(Call.started_at < f["date_to"] + "\uffff")
    for key, op in (("score_min", "__ge__"), ("score_max", "__le__")):
        if f.get(key):
            try:
                q = q.where(getattr(Call.score, op)(float(f[key])))
            except ValueError:
                raise HTTPException(422, f"{key}: not a number") from None
    if f.get("auto_fail") in ("1", "true", "yes"):
        q = q.where(Call.auto_fail.is_(True))
    if f.get("low_confidence") in ("1", "true", "yes"):
        q = q.where(Call.low_confidence_items > 0)
    if f.get("negative") in ("1", "true", "yes"):
        q = q.where(Call.customer_sentiment_end < -0.3)
    mine = {r.call_id: r for r in s.scalars(select(Review).where(Review.reviewer_id == user.id))}
    submitted = {cid for cid in s.scalars(select(Review.call_id).where(Review.state == "submitted"))}
    # a calibration call is "reviewed" for its scorer only once they submit: the others' reviews do not count
    calibrating = set(s.scalars(select(Assignment.call_id).where(Assignment.reviewer_id == user.id,
                                                                 Assignment.calibration_id.is_not(None))))
    rows = []
    for call in s.scalars(q.order_by(Call.started_at.desc(), Call.call_id)):
        review = mine.get(call.call_id)
        if call.call_id in calibrating:
            reviewed = review is not None and review.state == "submitted"
        else:
            reviewed = call.call_id in submitted
        if f.get("reviewed") == "yes" and not reviewed or f.get("reviewed") == "no" and reviewed:
            continue
        rows.append({"call_id": call.call_id, "agent_id": call.agent_id, "queue": call.queue,
                     "started_at": call.started_at, "duration_s": call.duration_s, "score": call.score,
                     "auto_fail": call.auto_fail, "low_confidence_items": call.low_confidence_items,
                     "customer_sentiment_end": call.customer_sentiment_end, "reviewed": reviewed,
                     "my_review": review.state if review else None, "pii_redacted": bool(call.pii_redacted)})
    return rows

FILTERS = ("agent", "queue", "date_from", "date_to", "score_min", "score_max", "auto_fail", "low_confidence",
           "negative", "reviewed")

@router.get("/api/calls")
def api_calls(request: Request, who: Who = Depends(current),
              s: Session = Depends(db_session)) -> JSONResponse:
    from pipeline.review.calibration import to_do

    f = {k: request.query_params.get(k, "") for k in FILTERS}
    return JSONResponse({"calls": queue_rows(s, who[0], f), "to_do": to_do(s, who[0].id)})

@router.get("/", response_class=HTMLResponse)
def queue_page(request: Request, who: Who = Depends(current),
               s: Session = Depends(db_session)) -> Response:
    from pipeline.review.calibration import to_do

    f = {k: request.query_params.get(k, "") for k in FILTERS}
    return templates.TemplateResponse(request, "queue.html", {
        "user": who[0], "csrf": who[1].csrf_token, "rows": queue_rows(s, who[0], f), "f": f,
        "to_do": to_do(s, who[0].id)})

