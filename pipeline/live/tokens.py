"""The tokens that telephony platforms stream calls with (``callqa live token add NAME``).

A token is 32 random bytes (URL-safe text), shown once when it is made; the database keeps its
sha256 only (``live_tokens``), so a copy of the database gives no usable token. A stream
presents it as ``Authorization: Bearer TOKEN`` or, where a platform cannot set headers (Twilio's
``<Stream>`` cannot), as ``?token=TOKEN`` in the stream's URL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import ConfigError
from pipeline.review.db import LiveToken, utcnow

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def add_token(session: Session, name: str) -> str:
    """Make a token named ``name`` (a new name, or a revoked one: replaced) and return it."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"live token add: {name!r} is not a token name (letters, digits, '_', '.', '-'; up to 100)")
    existing = session.get(LiveToken, name)
    if existing is not None and existing.revoked_at is None:
        raise ConfigError(f"live token add: a token named {name!r} exists; revoke it first")
    token = secrets.token_urlsafe(32)
    if existing is not None:
        session.delete(existing)
        session.flush()
    session.add(LiveToken(name=name, token_sha256=_sha(token)))
    return token


def revoke_token(session: Session, name: str) -> None:
    token = session.get(LiveToken, name)
    if token is None or token.revoked_at is not None:
        raise ConfigError(f"live token revoke: no valid token named {name!r}")
    token.revoked_at = utcnow()


def list_tokens(session: Session) -> list[LiveToken]:
    return list(session.scalars(select(LiveToken).order_by(LiveToken.name)))


def token_name(session: Session, token: str | None) -> str | None:
    """The name of the valid (not revoked) token ``token``, or None."""
    if not token or len(token) > 200:
        return None
    digest = _sha(token)
    row = session.scalars(select(LiveToken).where(LiveToken.token_sha256 == digest)).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    return row.name
