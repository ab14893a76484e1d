"""Users of the review app: salted password hashes (scrypt), roles (a user of role ``agent`` is tied
to their agent id), the password rule, adding, deactivating, resetting and checking them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pipeline.errors import ConfigError
from pipeline.review.db import ROLES, User, WebSession

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt cost (16 MiB of memory per hash): slow enough against guessing, fast enough to log in."""
MIN_PASSWORD = 12
"""The password rule (:func:`check_password`): at least this many characters ..."""
MIN_CLASSES = 2
"""... from at least this many of: lower-case letters, upper-case letters, digits, anything else ..."""
MIN_DISTINCT = 6
"""... with at least this many different characters, and not containing the user name."""
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,79}$")
DUMMY_HASH = "scrypt$16384$8$1$EF3qn7f8Peh41nW3qj+ybw==$4XsBd9YUUOwjDMTDQMlFXBj0psDuMz/3pfw7nFyCyc4="
"""The hash of a random password nobody knows, with the same cost as a real one: an unknown
name is checked against it, so it costs the same one scrypt as a known name."""


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


def check_password(username: str, password: str) -> None:
    """ConfigError unless ``password`` follows the rule: :data:`MIN_PASSWORD` characters or more,
    from :data:`MIN_CLASSES` of the four classes (lower case, upper case, digits, other), with
    :data:`MIN_DISTINCT` different characters, and without the user name in it (any case)."""
    classes = sum(any(test(c) for c in password) for test in (str.islower, str.isupper, str.isdigit,
                                                               lambda c: not c.isalnum()))
    why = None
    if len(password) < MIN_PASSWORD:
        why = f"at least {MIN_PASSWORD} characters"
    elif classes < MIN_CLASSES:
        why = "characters of at least two kinds (lower case, upper case, digits, others)"
    elif len(set(password)) < MIN_DISTINCT:
        why = f"at least {MIN_DISTINCT} different characters"
    elif username and username.lower() in password.lower():
        why = "something other than the user name in it"
    if why:
        raise ConfigError(f"{username}: the password is too weak; it must have {why}")


def add_user(session: Session, username: str, password: str, role: str, agent_id: str | None = None) -> User:
    """A new user; ConfigError for a taken or malformed name, a weak password (see
    :func:`check_password`), an unknown role, or an agent id that does not fit the role: a user
    of role ``agent`` needs the agent id their calls carry (call metadata ``agent_id``; they see
    only those calls, once reviewed), and no other role takes one."""
    if not USERNAME.match(username):
        raise ConfigError(f"users add {username!r}: a user name is 1-80 letters, digits or . _ @ - "
                          "(starting with a letter or digit)")
    if role not in ROLES:
        raise ConfigError(f"users add {username}: role {role!r} is not one of {', '.join(ROLES)}")
    agent_id = check_agent_id(username, role, agent_id)
    check_password(username, password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ConfigError(f"users add {username}: that user exists already")
    user = User(username=username, password_hash=hash_password(password), role=role, active=True, agent_id=agent_id)
    session.add(user)
    session.flush()
    return user


MAX_AGENT_ID = 200
"""The longest agent id (the width of ``calls.agent_id``)."""


def check_agent_id(username: str, role: str, agent_id: str | None) -> str | None:
    """The agent id to store for a user of ``role``: required (not blank) for ``agent``, refused
    for every other role. ConfigError saying which."""
    given = agent_id is not None and agent_id.strip() != ""
    if role != "agent":
        if given:
            raise ConfigError(f"users add {username}: --agent-id is for role agent only (a {role} sees calls "
                              "by assignment or role, not by agent id)")
        return None
    if not given:
        raise ConfigError(f"users add {username}: role agent needs --agent-id, the agent id their calls carry "
                          "(call metadata agent_id), so that they see their own reviewed calls")
    if agent_id != agent_id.strip() or len(agent_id) > MAX_AGENT_ID or not agent_id.isprintable():
        raise ConfigError(f"users add {username}: --agent-id {agent_id!r} must be the agent id exactly as the call "
                          f"metadata has it: at most {MAX_AGENT_ID} printable characters, no spaces around it")
    return agent_id


def _existing(session: Session, username: str, action: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ConfigError(f"users {action} {username}: no such user")
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Deactivate (``active=False``: cannot log in, every session of theirs ends at once; their
    reviews stay) or reactivate a user. ConfigError for an unknown name."""
    user = _existing(session, username, "activate" if active else "deactivate")
    user.active = active
    if not active:
        end_sessions(session, user)
    session.flush()
    return user


def reset_password(session: Session, username: str, password: str) -> User:
    """Give a user a new password (the rule of :func:`check_password` applies); their sessions
    end, so a password reset after a leak locks the holder of a stolen session out too."""
    user = _existing(session, username, "reset-password")
    check_password(username, password)
    user.password_hash = hash_password(password)
    end_sessions(session, user)
    session.flush()
    return user


def end_sessions(session: Session, user: User) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None. Exactly one scrypt is computed
    whatever the name (unknown, inactive or known), so timing does not tell which names exist."""
    user = session.scalar(select(User).where(User.username == username)) if USERNAME.match(username) else None
    ok = verify_password(password, user.password_hash if user is not None else DUMMY_HASH)
    return user if user is not None and user.active and ok else None
