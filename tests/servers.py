"""Real servers on loopback for the tests: a FastAPI app on uvicorn in a thread, and a client
logged in to the review app."""

from __future__ import annotations

import re
import socket
import threading
import time

import httpx

PASSWORD = "a-long-password"
"""The password of the users live_database makes."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app):  # noqa: ANN001, ANN201 - a FastAPI app; (server, thread, url)
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    return srv, thread, f"http://127.0.0.1:{port}"


def stop_server(srv, thread) -> None:  # noqa: ANN001
    srv.should_exit = True
    thread.join(timeout=10)


def stop_site(site: dict) -> None:
    """Stop a review site made by a test's ``make_*site`` (its server, thread and engine)."""
    site["server"].should_exit = True
    site["thread"].join(timeout=5)
    site["engine"].dispose()


def review_sites(request, tmp_path_factory, name: str, make):  # noqa: ANN001, ANN201 - a fixture's generator
    """A module fixture's body: the site ``make(root, db)`` builds over a SQLite file or, with
    the ``postgresql`` param, a fresh PostgreSQL database; stopped after the module."""
    from databases import fresh_postgres_db

    root = tmp_path_factory.mktemp(name)
    db = str(root / "review.db") if request.param == "sqlite" else fresh_postgres_db(
        request.getfixturevalue("postgres_url"))
    made = make(root, db)
    yield made
    stop_site(made)


def logged_in(url: str, name: str, password: str) -> tuple[httpx.Client, str]:
    """A client logged in to the review app at ``url`` as ``name``, and its CSRF token (from the
    page ``/`` leads to: a supervisor's is the live wall)."""
    c = httpx.Client(base_url=url)
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/"
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/", follow_redirects=True).text).group(1)
    return c, csrf


def live_database(tmp_path, users, tokens=("pbx",), revoked=()) -> tuple[str, dict[str, str]]:  # noqa: ANN001
    """A fresh SQLite review database ``tmp_path/review.db`` with ``users`` (``(name, role)``
    pairs, password ``password``; an agent gets the agent id a101) and live streaming tokens
    (``revoked`` made and then revoked): its path and ``{token name: token}``."""
    from pipeline.live.tokens import add_token, revoke_token
    from pipeline.review.db import make_engine, sessions
    from pipeline.review.migrate import upgrade
    from pipeline.review.users import add_user

    db = str(tmp_path / "review.db")
    engine = make_engine(db)
    upgrade(engine)
    with sessions(engine).begin() as s:
        for name, role in users:
            add_user(s, name, PASSWORD, role, agent_id="a101" if role == "agent" else None)
        made = {name: add_token(s, name) for name in (*tokens, *revoked)}
        for name in revoked:
            revoke_token(s, name)
    engine.dispose()
    return db, made
