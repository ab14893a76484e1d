"""What every response of the review app carries, and how request bodies are read.

:class:`SecurityHeaders` adds a Content-Security-Policy that runs no inline script or style and
loads nothing from elsewhere (the pages' scripts and styles are files under ``static/``; page
data travels in ``<script type="application/json">`` blocks, which are never executed), forbids
framing (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), content sniffing and
referrers. :func:`json_object` reads a JSON body as an object or answers 400/422 saying what
is wrong, so a malformed body is never a server error.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_INT = 2**31 - 1
"""The largest whole number a body may carry (an INTEGER column in PostgreSQL)."""


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP response (errors and files too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name == "Content-Security-Policy" and name in headers:
                        continue  # a page's own policy (report_page: its one inline stylesheet, by hash)
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def report_page(html: str) -> Any:
    """A self-contained report page (``callqa insights`` / ``report``: no script, one inline
    ``<style>``) as a response whose policy allows that one stylesheet by its hash and nothing
    else more than :data:`CSP`: no script runs on it at all."""
    import base64
    import hashlib
    import re

    from fastapi.responses import HTMLResponse

    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in styles)
    policy = CSP.replace("script-src 'self'", "script-src 'none'").replace("style-src 'self'", f"style-src 'self' {hashes}")
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})


async def json_object(request: Request, shape: str) -> dict[str, Any]:
    """The request's JSON body, which must be an object; 400 for a body that is not JSON, 422
    for JSON of another kind (``shape`` describes what is expected, for the message)."""
    try:
        body = json.loads(await request.body(), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise HTTPException(400, f"the body is not valid JSON; send {shape}") from None
    if not isinstance(body, dict):
        raise HTTPException(422, f"the body must be a JSON object: {shape}")
    return body


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def whole_number(body: dict[str, Any], key: str, default: int, low: int = 0, high: int = MAX_INT) -> int:
    """``body[key]`` as a whole number in [low, high] (``default`` when absent or null); 422
    for anything else (text, fractions, booleans, numbers too large)."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise HTTPException(422, f"{key}: a whole number from {low} to {high}")
    return value


def text(body: dict[str, Any], key: str, limit: int = 200) -> str:
    """``body[key]`` as text ("" when absent or null); 422 for another type, a longer text or a NUL."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise HTTPException(422, f"{key}: text of at most {limit} characters")
    return value


def names(body: dict[str, Any], key: str) -> list[str]:
    """``body[key]`` as a list of user names ([] when absent or null); 422 otherwise."""
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1000 or not all(isinstance(v, str) and 0 < len(v) <= 80
                                                                    and "\x00" not in v for v in value):
        raise HTTPException(422, f"{key}: a list of user names")
    return value
