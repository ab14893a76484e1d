"""The queue: the calls a user may open, filtered, sorted and a page at a time, and their to-do
list of assigned calls not submitted yet.

Everything is one SQL query (and one count) over the indexed call columns, so a page costs the
same with a year of calls as with a day's. Leads and admins open on the last 30 days with calls
(:mod:`pipeline.review.periods`; ``period=all`` or dates widen it); a reviewer's and an agent's
queue hold only their own calls, so they open on all dates. A call is *reviewed* when it has a
review that counts (``calls.counted_review_id``); a calibration call only once this user
submitted theirs.

Calls and written conversations (e-mail threads, chats) share the one queue: ``channel``
(``voice``, ``email`` or ``chat``) filters it, and every row says its channel (and, for a
written conversation, its number of messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from pipeline.errors import ConfigError
from pipeline.review import periods
from pipeline.review.db import CHANNELS, Assignment, Call, CallItem, Review, User
from pipeline.review.web import Who, current, db_session, templates, visible_calls

router = APIRouter()

FILTERS = ("agent", "queue", "channel", "date_from", "date_to", "score_min", "score_max", "auto_fail",
           "low_confidence", "negative", "reviewed", "item", "answer", "period", "sort", "order", "page", "per_page")
SORTS = {"started_at": Call.started_at, "score": Call.score, "duration": Call.duration_s, "agent": Call.agent_id,
         "queue": Call.queue, "channel": Call.channel, "sentiment": Call.customer_sentiment_end,
         "call_id": Call.call_id}
"""Columns the queue sorts by (``sort``), ties broken by call id."""
PER_PAGE, MAX_PER_PAGE = 50, 200
CHANNEL_TITLES = {"voice": "call", "email": "e-mail", "chat": "chat"}
"""How the queue names each channel (``calls.channel``)."""
YES = ("1", "true", "yes", "on")


@dataclass
class QueuePage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    window: periods.Window

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.rows, "total": self.total, "page": self.page, "per_page": self.per_page,
                "pages": self.pages, "period": self.window.to_dict()}


def _number(f: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = f.get(key) or ""
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(422, f"{key}: a whole number") from None
    if not low <= value <= high:
        raise HTTPException(422, f"{key}: from {low} to {high}")
    return value


def _reviewed(user: User) -> Any:
    """SQL: whether a call counts as reviewed in ``user``'s queue (see the module docstring)."""
    a, r = aliased(Assignment), aliased(Review)  # the reviewer's queue joins assignments itself
    calibrating = (select(a.id).where(a.call_id == Call.call_id, a.reviewer_id == user.id,
                                      a.calibration_id.is_not(None)).correlate(Call).exists())
    mine = (select(r.id).where(r.call_id == Call.call_id, r.reviewer_id == user.id, r.state == "submitted")
            .correlate(Call).exists())
    return or_(and_(~calibrating, Call.counted_review_id.is_not(None)), and_(calibrating, mine))


def filtered(s: Session, user: User, f: dict[str, str]) -> tuple[Select, periods.Window]:
    """The visible calls matching the filters ``f``, and the window they are limited to."""
    q = visible_calls(user)
    if f.get("agent"):
        q = q.where(Call.agent_id == f["agent"])
    if f.get("queue"):
        q = q.where(Call.queue == f["queue"])
    if f.get("channel"):
        if f["channel"] not in CHANNELS:
            raise HTTPException(422, f"channel: one of {', '.join(CHANNELS)}")
        q = q.where(Call.channel == f["channel"])
    try:
        if f.get("date_from") or f.get("date_to"):
            window = periods.between(f.get("date_from") or None, f.get("date_to") or None)
        else:
            default = periods.DEFAULT_PERIOD if user.role in ("lead", "admin") else "all"
            window = periods.resolve(s, f.get("period") or None, default=default)
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None
    if window.start:
        q = q.where(Call.started_at >= window.start)
    if window.end:
        q = q.where(Call.started_at < window.end)
    for key, op in (("score_min", "__ge__"), ("score_max", "__le__")):
        if f.get(key):
            try:
                q = q.where(getattr(Call.score, op)(float(f[key])))
            except ValueError:
                raise HTTPException(422, f"{key}: not a number") from None
    if f.get("auto_fail") in YES:
        q = q.where(Call.auto_fail.is_(True))
    if f.get("low_confidence") in YES:
        q = q.where(Call.low_confidence_items > 0)
    if f.get("negative") in YES:
        q = q.where(Call.customer_sentiment_end < -0.3)
    if f.get("reviewed") in ("yes", "no"):
        reviewed = _reviewed(user)
        q = q.where(reviewed if f["reviewed"] == "yes" else ~reviewed)
    if f.get("item"):
        answer = func.coalesce(CallItem.human_answer, CallItem.answer)
        match = select(CallItem.id).where(CallItem.call_id == Call.call_id, CallItem.item_id == f["item"])
        if f.get("answer"):
            if f["answer"] not in ("yes", "no", "na"):
                raise HTTPException(422, "answer: yes, no or na")
            match = match.where(answer == f["answer"])
        q = q.where(match.correlate(Call).exists())
    return q, window


def queue_page(s: Session, user: User, f: dict[str, str]) -> QueuePage:
    """One page of the user's queue (see the module docstring): ``page`` (from 1), ``per_page``
    (up to 200), ``sort`` (:data:`SORTS`, default newest first) and ``order``."""
    q, window = filtered(s, user, f)
    sort = f.get("sort") or "started_at"
    order = f.get("order") or ("desc" if sort == "started_at" else "asc")
    if sort not in SORTS or order not in ("asc", "desc"):
        raise HTTPException(422, f"sort: one of {', '.join(SORTS)}; order: asc or desc")
    per_page = _number(f, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
    page = _number(f, "page", 1, 1, 10**6)
    total = s.scalar(select(func.count()).select_from(q.with_only_columns(Call.call_id).subquery())) or 0
    column = SORTS[sort]
    ordered = q.order_by((column.desc() if order == "desc" else column.asc()).nulls_last(),
                         Call.call_id.desc() if order == "desc" else Call.call_id)
    calls = list(s.scalars(ordered.limit(per_page).offset((page - 1) * per_page)))
    ids = [c.call_id for c in calls]
    mine = {r.call_id: r for r in s.scalars(select(Review).where(Review.reviewer_id == user.id,
                                                                 Review.call_id.in_(ids)))}
    calibrating = set(s.scalars(select(Assignment.call_id).where(Assignment.reviewer_id == user.id,
                                                                 Assignment.calibration_id.is_not(None),
                                                                 Assignment.call_id.in_(ids))))
    rows = []
    for call in calls:
        review = mine.get(call.call_id)
        if call.call_id in calibrating:
            reviewed = review is not None and review.state == "submitted"
        else:
            reviewed = call.counted_review_id is not None
        rows.append({"call_id": call.call_id, "channel": call.channel, "messages": call.messages,
                     "agent_id": call.agent_id, "queue": call.queue, "started_at": call.started_at,
                     "duration_s": call.duration_s, "score": call.score,
                     "auto_fail": call.auto_fail, "low_confidence_items": call.low_confidence_items,
                     "reviewed_score": None if call.call_id in calibrating else call.reviewed_score,
                     "customer_sentiment_end": call.customer_sentiment_end, "reviewed": reviewed,
                     "my_review": review.state if review else None, "pii_redacted": bool(call.pii_redacted)})
    return QueuePage(rows, total, page, per_page, window)


def _filters(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in FILTERS}


@router.get("/api/calls")
def api_calls(request: Request, who: Who = Depends(current), s: Session = Depends(db_session)) -> JSONResponse:
    from pipeline.review.calibration import to_do

    page = queue_page(s, who[0], _filters(request))
    return JSONResponse({**page.to_dict(), "to_do": to_do(s, who[0].id)})


@router.get("/", response_class=HTMLResponse)
def queue_view(request: Request, who: Who = Depends(current), s: Session = Depends(db_session)) -> Response:
    from pipeline.review.calibration import to_do

    if who[0].role == "supervisor" and getattr(request.app.state, "live", None) is not None:
        return RedirectResponse("/live", status_code=303)  # a supervisor's page: the calls in progress

    f = _filters(request)
    page = queue_page(s, who[0], f)
    kept = {k: v for k, v in f.items() if v and k != "page"}

    def link(**changes: Any) -> str:
        query = {**kept, **{k: str(v) for k, v in changes.items() if v is not None}}
        return "/?" + urlencode({k: v for k, v in query.items() if v})

    def sort_link(column: str) -> str:
        now_sort = f.get("sort") or "started_at"
        now_order = f.get("order") or ("desc" if now_sort == "started_at" else "asc")
        flip = "asc" if (column == now_sort and now_order == "desc") else "desc"
        order = flip if column == now_sort else ("desc" if column == "started_at" else "asc")
        return link(sort=column, order=order)

    return templates.TemplateResponse(request, "queue.html", {
        "user": who[0], "csrf": who[1].csrf_token, "rows": page.rows, "f": f, "page": page,
        "to_do": to_do(s, who[0].id), "link": link, "sort_link": sort_link, "periods": list(periods.PERIODS),
        "channels": CHANNEL_TITLES})
