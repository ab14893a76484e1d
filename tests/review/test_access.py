"""Hardened access to the review app, through a real server on SQLite and PostgreSQL: log-in
throttling and lockout per name and per address (shared by server processes over one
database), the same work for unknown names, the password rule, deactivation and password
resets from ``callqa users``, the security headers, and malformed bodies answered with 4xx."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from conftest import run_cli
from pipeline.errors import ConfigError
from pipeline.review.db import LoginThrottle, User, WebSession, make_engine, sessions, utcnow
from pipeline.review.migrate import upgrade
from pipeline.review.hardening import SECURITY_HEADERS
from pipeline.review.options import ReviewOptions
from pipeline.review.users import add_user, authenticate, check_password, reset_password, set_active
from review_helpers import db_url, engine, postgres_url  # noqa: F401  (fixtures)
from test_app import PASSWORD, server, start_server  # noqa: F401  (the module-scoped app fixture)

POLICY = ReviewOptions(login_window_s=60, login_max_failures_account=3, login_max_failures_address=6,
                       login_lockout_s=60)
TEMPLATES = Path(__file__).resolve().parents[2] / "pipeline" / "review" / "templates"


@pytest.fixture
def guarded(db_url: str):  # noqa: F811
    """A fresh database with users rita and sam, and two server processes' worth of apps over
    it with :data:`POLICY` (3 failures lock a name, 6 an address)."""
    from pipeline.review.app import create_app

    e = make_engine(db_url)
    upgrade(e)
    with sessions(e).begin() as s:
        for name in ("rita", "sam"):
            add_user(s, name, PASSWORD, "reviewer")
    servers = [start_server(create_app(db_url, options=POLICY)) for _ in range(2)]
    yield {"db": db_url, "engine": e, "urls": [url for _, _, url in servers]}
    for srv, thread, _ in servers:
        srv.should_exit = True
        thread.join(timeout=5)
    e.dispose()


def try_login(url: str, name: str, password: str, address: str | None = None) -> httpx.Response:
    """One log-in through the form (``address``: the client address a proxy in front reports)."""
    headers = {"X-Forwarded-For": address} if address else {}
    c = httpx.Client(base_url=url, headers=headers)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    return c.post("/login", data={"username": name, "password": password, "csrf_token": token})


def is_locked(r: httpx.Response) -> bool:
    return r.status_code == 429 and "Too many failed log-ins" in r.text


# -- the same work for every name -------------------------------------------------------------


def test_every_name_costs_exactly_one_scrypt(engine, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    """An unknown name, a known name with a wrong password and a deactivated user cost the same
    one scrypt as a right password, so the time taken does not tell which names exist."""
    import pipeline.review.users as users

    with sessions(engine).begin() as s:
        add_user(s, "rita", PASSWORD, "reviewer")
        add_user(s, "gone", PASSWORD, "reviewer")
        set_active(s, "gone", False)
    assert users.DUMMY_HASH.split("$")[1:4] == [str(users.SCRYPT_N), str(users.SCRYPT_R), str(users.SCRYPT_P)]
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(users.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    with sessions(engine)() as s:
        for name, password, ok in [("rita", PASSWORD, True), ("rita", "wrong-password", False),
                                   ("nobody", PASSWORD, False), ("gone", PASSWORD, False),
                                   ("not a name!", PASSWORD, False)]:
            calls.clear()
            assert (authenticate(s, name, password) is not None) == ok
            assert len(calls) == 1, name


# -- throttling and lockout --------------------------------------------------------------------


def test_failures_lock_a_name_even_for_the_right_password(guarded):
    url = guarded["urls"][0]
    for _ in range(2):
        r = try_login(url, "rita", "wrong-password")
        assert r.status_code == 401 and "Wrong user name or password" in r.text
    assert is_locked(try_login(url, "rita", "wrong-password"))  # the third failure locks the name
    assert is_locked(try_login(url, "rita", PASSWORD))  # the right password is refused too
    assert try_login(url, "sam", PASSWORD).status_code == 303  # another name from the same address
    # the lock ends
    with sessions(guarded["engine"]).begin() as s:
        s.execute(update(LoginThrottle).where(LoginThrottle.key == "user:rita")
                  .values(locked_until=utcnow() - timedelta(seconds=1)))
    assert try_login(url, "rita", PASSWORD).status_code == 303


def test_an_unknown_name_is_locked_the_same_way(guarded):
    url = guarded["urls"][0]
    known = [try_login(url, "rita", "wrong-password") for _ in range(3)]
    unknown = [try_login(url, "nobody", "wrong-password") for _ in range(3)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 429]
    tokens = re.compile(r'(value|content)="[^"]*"')
    assert tokens.sub("", known[-1].text) == tokens.sub("", unknown[-1].text)


def test_a_success_clears_the_names_count(guarded):
    url = guarded["urls"][0]
    for _ in range(2):
        assert try_login(url, "rita", "wrong-password").status_code == 401
    assert try_login(url, "rita", PASSWORD).status_code == 303
    for _ in range(2):
        assert try_login(url, "rita", "wrong-password").status_code == 401
    assert try_login(url, "rita", PASSWORD).status_code == 303


def test_failures_from_one_address_lock_that_address(guarded):
    url = guarded["urls"][0]
    results = [try_login(url, f"guess{n}", "wrong-password", address="203.0.113.7") for n in range(6)]
    assert [r.status_code for r in results] == [401] * 5 + [429]
    assert is_locked(try_login(url, "sam", PASSWORD, address="203.0.113.7"))  # any name, from there
    assert try_login(url, "sam", PASSWORD, address="198.51.100.2").status_code == 303  # elsewhere: fine


def test_server_processes_share_the_counts(guarded):
    one, two = guarded["urls"]
    assert try_login(one, "rita", "wrong-password").status_code == 401
    assert try_login(two, "rita", "wrong-password").status_code == 401
    assert is_locked(try_login(one, "rita", "wrong-password"))
    assert is_locked(try_login(two, "rita", PASSWORD))


# -- users: the password rule, deactivation, resets --------------------------------------------


@pytest.mark.parametrize("password, why", [
    ("short-1", "at least 12"), ("alllowercaseletters", "two kinds"), ("123456789012345", "two kinds"),
    ("abababababab12", "different characters"), ("rita-is-my-name", "user name"), ("xRITA-password", "user name"),
])
def test_weak_passwords_are_refused(password: str, why: str):
    with pytest.raises(ConfigError, match=why):
        check_password("rita", password)
    check_password("rita", "correct horse battery")  # lower case and spaces: fine


def test_deactivating_ends_the_sessions_and_a_reset_password_works(engine):  # noqa: F811
    with sessions(engine).begin() as s:
        user = add_user(s, "rita", PASSWORD, "reviewer")
        s.add(WebSession(token_sha256="x" * 64, user_id=user.id, csrf_token="t", expires_at=utcnow()))
        with pytest.raises(ConfigError, match="too weak"):
            add_user(s, "weak", "password", "reviewer")
    with sessions(engine).begin() as s:
        set_active(s, "rita", False)
        assert s.scalars(select(WebSession)).all() == []
        assert authenticate(s, "rita", PASSWORD) is None
        set_active(s, "rita", True)
        with pytest.raises(ConfigError, match="too weak"):
            reset_password(s, "rita", "rita-rita-rita")
        with pytest.raises(ConfigError, match="no such user"):
            reset_password(s, "nobody", "a-new-long-password")
        reset_password(s, "rita", "a-new-long-password")
    with sessions(engine)() as s:
        assert authenticate(s, "rita", PASSWORD) is None
        assert authenticate(s, "rita", "a-new-long-password") is not None


@pytest.mark.slow
def test_the_cli_deactivates_resets_and_refuses_weak_passwords(guarded):
    db, url = guarded["db"], guarded["urls"][0]
    c = httpx.Client(base_url=url)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    assert c.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": token}).status_code == 303
    assert c.get("/api/calls").status_code == 200

    weak = run_cli("users", "add", "ann", "--role", "reviewer", "--password-stdin", "--db", db, input="ann12345\n")
    assert weak.returncode == 2 and "too weak" in weak.stderr
    done = run_cli("users", "deactivate", "rita", "--db", db)
    assert done.returncode == 0, done.stderr
    assert c.get("/api/calls").status_code == 401  # her session ended
    refused = try_login(url, "rita", PASSWORD)
    assert refused.status_code == 401 and "Wrong user name or password" in refused.text  # as for anyone
    assert "disabled" in run_cli("users", "list", "--db", db).stdout
    assert run_cli("users", "activate", "rita", "--db", db).returncode == 0
    reset = run_cli("users", "reset-password", "rita", "--password-stdin", "--db", db, input="Another-Pass-2026\n")
    assert reset.returncode == 0, reset.stderr
    assert try_login(url, "rita", PASSWORD).status_code == 401
    assert try_login(url, "rita", "Another-Pass-2026").status_code == 303
    assert run_cli("users", "deactivate", "nobody", "--db", db).returncode == 2
    with sessions(guarded["engine"])() as s:
        assert s.scalar(select(User).where(User.username == "ann")) is None


# -- security headers ---------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(guarded):
    c = httpx.Client(base_url=guarded["urls"][0])
    responses = [c.get("/login"), c.get("/api/calls"), c.get("/static/call.js"), c.get("/static/review.css"),
                 c.get("/no-such-page"), c.post("/login", data={"username": "x", "password": "y"}),
                 c.get("/", headers={"accept": "text/html"})]
    assert [r.status_code for r in responses] == [200, 401, 200, 200, 404, 403, 303]
    for r in responses:
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (r.url, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert responses[2].headers["content-type"].startswith("text/javascript")


def test_the_templates_have_no_inline_script_style_or_handler():
    for path in TEMPLATES.glob("*.html"):
        page = path.read_text(encoding="utf-8")
        scripts = re.findall(r"<script\b[^>]*>", page)
        # files of the app (its own scripts, and the charting library from the Python environment), or data
        assert all(re.search(r'src="/(static|vendor)/', s) or 'type="application/json"' in s for s in scripts), path.name
        assert "<style" not in page and not re.search(r"\sstyle=", page), path.name
        assert not re.search(r"\son[a-z]+\s*=", page), path.name


# -- malformed bodies: 4xx, never 500 -------------------------------------------------------------

MALFORMED = [b"", b"{", b"not json", b"\xff\xfe\x00", b"[]", b"null", b"1e400", b'"text"', b"NaN",
             b"[" * 100_000, b'{"version": 1e400}', b'{"version": null}', b'{"version": "1"}',
             b'{"version": 99999999999999999999999}', b'{"version": -1}', b'{"version": NaN}', b'{"version": true}',
             b'{"answers": []}', b'{"answers": {"opening.greeting": 5}}', b'{"answers": {"opening.greeting": {}}}',
             b'{"comment": {"a": 1}}', b'{"comment": "\\u0000"}', b'{"per_agent": -1}', b'{"per_agent": 1e308}',
             b'{"per_agent": "x"}', b'{"seed": 1e400}', b'{"seed": 99999999999999999999999}',
             b'{"low_confidence_min": 0}', b'{"reviewers": "rita"}', b'{"reviewers": [1, null]}',
             b'{"reviewers": {"rita": 1}}', b'{"start": 5}', b'{"end": ["x"]}', b'{"apply": "yes"}',
             b'{"name": {}, "call_id": []}', b'{"name": "x", "call_id": "c1", "reviewers": ["\\u0000", "sam"]}',
             b'{"agent": 5}', b'{"agent": "\\u0000"}', b'{"agent": "' + b"x" * 100_000 + b'"}',
             b'{"submission_id": "1", "item_id": 5}', b'{"submission_id": 1e400}',
             b'{"submission_id": 99999999999999999999, "reason": []}', b'{"decision": ["upheld"], "answer": 1}']


@pytest.mark.slow
def test_malformed_bodies_get_4xx_never_500(server):  # noqa: F811
    from test_app import login

    lena, csrf = login(server, "lena")
    h = {"X-CSRF-Token": csrf}
    endpoints = [("PUT", "/api/calls/c1/review"), ("POST", "/api/calls/c2/speakers"), ("POST", "/api/sample"),
                 ("POST", "/api/calibrations"), ("POST", "/api/calls/c2/disputes"), ("POST", "/api/disputes/1/resolve")]
    seen = {}
    for method, path in endpoints:
        for body in MALFORMED:
            for ctype in ("application/json", "application/x-www-form-urlencoded", "text/plain"):
                r = lena.request(method, path, content=body, headers={**h, "Content-Type": ctype})
                seen[(path, body[:40], ctype)] = r.status_code
                if r.status_code >= 400:
                    assert r.json().get("detail") or r.json().get("error"), (path, body[:40], r.text)
    assert all(code < 500 for code in seen.values()), {k: v for k, v in seen.items() if v >= 500}
    assert seen[("/api/sample", b"{", "application/json")] == 400

    for weird in ("99999999999999999999", "-1", "0", "1e3"):
        assert lena.get(f"/api/calibrations/{weird}").status_code in (404, 422)

    c = httpx.Client(base_url=server["url"])
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    forms = [{}, {"username": "rita"}, {"password": "x"}, {"username": "rita", "password": "x", "csrf_token": "ü"},
             {"username": "ri\x00ta", "password": "x", "csrf_token": token},
             {"username": "r" * 100_000, "password": "x", "csrf_token": token},
             {"username": ["a", "b"], "password": "x", "csrf_token": token}]
    for form in forms:
        assert c.post("/login", data=form).status_code < 500, form
    for raw, ctype in ((b"\xff\xfe", "application/x-www-form-urlencoded"), (b'{"username": "rita"}', "application/json"),
                       (b"--x\r\nbroken", "multipart/form-data; boundary=x")):
        assert c.post("/login", content=raw, headers={"Content-Type": ctype}).status_code < 500
    for headers in ({"X-CSRF-Token": b"\xfc"}, {"Content-Type": "application/x-www-form-urlencoded"}):
        assert lena.post("/logout", content=b"csrf_token=%FC%00", headers=headers).status_code == 403


def test_the_throttling_settings_are_checked():
    from pipeline.review.options import validate

    for key in ("login_window_s", "login_max_failures_account", "login_max_failures_address", "login_lockout_s"):
        with pytest.raises(ConfigError, match=f"review.{key}: 0 is not allowed"):
            validate(ReviewOptions(**{key: 0}))
