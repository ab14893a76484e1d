"""What every page of the review app shares: the database session, the logged-in user and
their CSRF check, role checks, which calls a user may see, and the templates. The routes live
in the ``routes_*`` modules; :func:`pipeline.review.app.create_app` puts them together and keeps
the app's settings on ``app.state`` (``options``, ``make_session``, ``protected``,
``secure_cookies``)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.templating import Jinja2Templates
from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from pipeline.review.db import LIVE_ROLES, Assignment, Call, User, WebSession, utcnow

COOKIE = "callqa_session"
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
Who = tuple[User, WebSession]


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def db_session(request: Request) -> Iterator[Session]:
    with request.app.state.make_session() as s:
        yield s


def current(request: Request, s: Session = Depends(db_session)) -> Who:
    token = request.cookies.get(COOKIE)
    row = s.get(WebSession, sha(token)) if token else None
    if row is None or _aware(row.expires_at) < utcnow():
        wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")
        raise HTTPException(303 if wants_html else 401, "log in first", headers={"Location": "/login"})
    user = s.get(User, row.user_id)
    if user is None or not user.active:
        raise HTTPException(401, "log in first")
    return user, row


async def check_csrf(request: Request, who: Who = Depends(current)) -> Who:
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        sent = (await request.form()).get("csrf_token")
    if not sent or not secrets.compare_digest(str(sent).encode(), who[1].csrf_token.encode()):
        raise HTTPException(403, "missing or wrong CSRF token")
    return who


def lead(who: Who = Depends(current)) -> Who:
    if who[0].role not in ("lead", "admin"):
        raise HTTPException(403, "for leads and admins")
    return who


def lead_csrf(who: Who = Depends(check_csrf)) -> Who:
    return lead(who)


def supervisor(who: Who = Depends(current)) -> Who:
    """The calls in progress (the live wall and API, listen-in, flags): supervisors, leads and
    admins (:data:`~pipeline.review.db.LIVE_ROLES`); 403 for reviewers and agents."""
    if who[0].role not in LIVE_ROLES:
        raise HTTPException(403, "for supervisors, leads and admins")
    return who


def supervisor_csrf(who: Who = Depends(check_csrf)) -> Who:
    return supervisor(who)


def websocket_user(ws: WebSocket, s: Session, roles: tuple[str, ...]) -> User | None:
    """The user of a WebSocket handshake: the session cookie of a logged-in, active user of one
    of ``roles``, from a page of this app (an ``Origin`` header, when sent, naming this host:
    another site's page cannot open it with the user's cookie); None otherwise."""
    origin = ws.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1].rstrip("/") != ws.headers.get("host", ""):
        return None
    token = ws.cookies.get(COOKIE)
    row = s.get(WebSession, sha(token)) if token else None
    if row is None or _aware(row.expires_at) < utcnow():
        return None
    user = s.get(User, row.user_id)
    return user if user is not None and user.active and user.role in roles else None


def visible_calls(user: User) -> Select:
    """The calls ``user`` may open: a reviewer those assigned to them, an agent their own
    reviewed calls, leads and admins all, a supervisor none (they watch calls in progress; the
    reviewers and leads see the moments they flagged on the call's review page)."""
    q = select(Call)
    if user.role == "supervisor":
        q = q.where(false())
    elif user.role == "reviewer":
        q = q.join(Assignment, Assignment.call_id == Call.call_id).where(Assignment.reviewer_id == user.id)
    elif user.role == "agent":
        q = q.where(Call.agent_id == user.agent_id, Call.agent_id.is_not(None), Call.counted_review_id.is_not(None))
    return q


def call_for(s: Session, user: User, call_id: str) -> Call:
    call = s.scalar(visible_calls(user).where(Call.call_id == call_id))
    if call is None:  # not there, or not this user's: the same answer, so ids do not leak
        raise HTTPException(404, "no such call in your queue")
    return call
