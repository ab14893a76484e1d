"""Users of the review app: salted password hashes (scrypt), roles, adding and checking them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import ConfigError
from pipeline.review.db import ROLES, User

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt cost (16 MiB of memory per hash): slow enough against guessing, fast enough to log in."""
MIN_PASSWORD = 8
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,79}$")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def add_user(session: Session, username: str, password: str, role: str) -> User:
    """A new user; ConfigError for a taken or malformed name, a short password or an unknown role."""
    if not USERNAME.match(username):
        raise ConfigError(f"users add {username!r}: a user name is 1-80 letters, digits or . _ @ - "
                          "(starting with a letter or digit)")
    if role not in ROLES:
        raise ConfigError(f"users add {username}: role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"users add {username}: the password must have at least {MIN_PASSWORD} characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ConfigError(f"users add {username}: that user exists already")
    user = User(username=username, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (the same work is done for an
    unknown name, so timing does not tell which names exist)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(password, hash_password("timing-equaliser"))
        return None
    return user if user.active and verify_password(password, user.password_hash) else None
