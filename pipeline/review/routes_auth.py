"""Log-in and log-out: a double-submit CSRF token on the form, throttling and lockout per name
and address (:mod:`pipeline.review.throttle`), sessions as random tokens stored hashed."""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from pipeline.review import throttle
from pipeline.review.db import WebSession, utcnow
from pipeline.review.users import authenticate
from pipeline.review.web import COOKIE, Who, check_csrf, db_session, sha, templates

LOGIN_CSRF_COOKIE = "callqa_login_csrf"
SESSION_HOURS = 12
LOCKED = "Too many failed log-ins for this user name or from this address: log-in is paused; try again later."

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    resp = templates.TemplateResponse(request, "login.html", {"csrf": token, "error": None})
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.secure_cookies)
    return resp

@router.post("/login")
def login(request: Request, username: str = Form(...), password: str = Form(...), csrf_token: str = Form(""),
          s: Session = Depends(db_session)) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie.encode(), csrf_token.encode()):
        raise HTTPException(403, "missing or wrong CSRF token")
    keys = throttle.keys_for(username, request.client.host if request.client else None)
    if throttle.locked(s, keys):  # refused before the password is checked, the right one too
        return templates.TemplateResponse(request, "login.html", {"csrf": cookie, "error": LOCKED}, status_code=429)
    user = authenticate(s, username, password)
    if user is None:
        now_locked = throttle.record_failure(s, keys, request.app.state.options)
        s.commit()
        return templates.TemplateResponse(request, "login.html", {
            "csrf": cookie, "error": LOCKED if now_locked else "Wrong user name or password."},
            status_code=429 if now_locked else 401)
    throttle.record_success(s, keys)
    token = secrets.token_urlsafe(32)
    s.add(WebSession(token_sha256=sha(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                     expires_at=utcnow() + timedelta(hours=SESSION_HOURS)))
    s.commit()
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.secure_cookies,
                    max_age=SESSION_HOURS * 3600)
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp

@router.post("/logout")
def logout(who: Who = Depends(check_csrf), s: Session = Depends(db_session)) -> Response:
    row = s.get(WebSession, who[1].token_sha256)
    if row is not None:
        s.delete(row)
        s.commit()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp

