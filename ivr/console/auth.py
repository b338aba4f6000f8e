"""Who is signed in to the console: admins with the admin token, agents with their own.

The session is Flask's signed cookie (`ivr_console`): HttpOnly, SameSite=Lax, and Secure when
the console is served over https (asked per request, so one process behind a TLS proxy and
on a laptop's http both work). It holds the role, the agent id, and a fingerprint of the token
that signed in: rotating the admin token or an agent's token ends every session made with the
old one. Every form and every action is a POST that carries a CSRF token (Flask-WTF's), checked
before the view runs; the sign-in form too, so nobody can sign a browser in as someone else.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf

from ivr.infra.agents import AgentNotFound, agent_by_token, get_agent
from ivr.infra.agents.models import Agent
from ivr.infra.security import admin_refusal
from ivr.infra.services import services_of

SESSION_COOKIE = "ivr_console"
SESSION_HOURS = 12


@dataclass(frozen=True)
class User:
    """The person a console request is for."""

    role: str  # "admin" or "agent"
    agent: Agent | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def name(self) -> str:
        return "Admin" if self.agent is None else self.agent.name


class ConsoleSessions(SecureCookieSessionInterface):
    """The signed-cookie session, marked Secure whenever the request came over https."""

    def open_session(self, app: Flask, request):
        # No cookie at all (every Twilio webhook): the empty session Flask's own would give,
        # without parsing cookies and building a signing serializer on each request first.
        if app.secret_key and not request.environ.get("HTTP_COOKIE"):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session, response) -> None:
        # Never read nor written (every Twilio webhook): Flask's own would set nothing either.
        if not (session or session.modified or session.accessed):
            return
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: Flask) -> bool:
        base = str(app.config.get("PUBLIC_BASE_URL") or "")
        return bool(request and (request.is_secure or base.startswith("https://")))


def init_app(app: Flask) -> None:
    """Sign sessions with a key made from the service's secrets; cookies as described above."""
    app.secret_key = app.config.get("IVR_SECRET_KEY") or _derived_key(app)
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_HOURS * 3600,
        WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
        WTF_CSRF_SSL_STRICT=False,  # Origin/Referer are not kept by every proxy; SameSite is
    )
    app.session_interface = ConsoleSessions()
    app.jinja_env.globals["csrf_token"] = generate_csrf


def _derived_key(app: Flask) -> str:
    # Every process of one deployment shares the Twilio auth token, so they agree on this key
    # without another setting; it changes when that token is rotated (sessions then end).
    secret = str(app.config["TWILIO_AUTH_TOKEN"]).encode()
    return hmac.new(secret, b"ivr-console-session-v1", hashlib.sha256).hexdigest()


def fingerprint(token: str) -> str:
    """What the session keeps of the token that signed in (never the token)."""
    key = str(current_app.secret_key).encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:32]


def check_csrf() -> None:
    """Refuse a POST without the form's (or the X-CSRFToken header's) valid CSRF token."""
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken", "")
    try:
        validate_csrf(token)
    except Exception as exc:  # ValidationError: missing, expired, or not this session's
        raise CSRFError(str(exc) or "The CSRF token is missing.") from exc


def sign_in(token: str) -> User | None:
    """Start a session for the holder of `token` (admin or agent); None if it is neither."""
    token = token.strip()
    if token and admin_refusal(current_app.config, token) is None:
        session.clear()
        session.update(role="admin", key=fingerprint(token), sid=secrets.token_hex(8))
        session.permanent = True
        return User("admin")
    agent = agent_by_token(services_of(current_app).db, token) if token else None
    if agent is None:
        return None
    session.clear()
    session.update(role="agent", agent_id=agent.id, key=agent.token_hash[:16],
                   sid=secrets.token_hex(8))
    session.permanent = True
    return User("agent", agent)


def current_user() -> User | None:
    """The signed-in user of this request, or None (a stale or forged session counts as none)."""
    if "console_user" not in g:
        g.console_user = _check_session()
    return g.console_user


def still_signed_in() -> bool:
    """Whether this request's session is still good now (asked again by open streams)."""
    return _check_session() is not None


def session_key() -> str:
    """Which signed-in browser this is (one per sign-in), for per-browser limits."""
    return f"{session.get('role')}:{session.get('agent_id', '')}:{session.get('sid', '')}"


def _check_session() -> User | None:
    user = None
    role = session.get("role")
    if role == "admin":
        expected = current_app.config.get("IVR_ADMIN_TOKEN")
        if (expected and admin_refusal(current_app.config, str(expected)) is None
                and hmac.compare_digest(str(session.get("key", "")),
                                        fingerprint(str(expected)))):
            user = User("admin")
    elif role == "agent":
        agent = _agent(session.get("agent_id"))
        if (agent is not None and agent.active and agent.token_hash
                and hmac.compare_digest(str(session.get("key", "")), agent.token_hash[:16])):
            user = User("agent", agent)
    return user


def _agent(agent_id: object) -> Agent | None:
    if not isinstance(agent_id, int):
        return None
    try:
        return get_agent(services_of(current_app).db, agent_id)
    except AgentNotFound:
        return None


def signed_in(role: str | None = None) -> Callable:
    """Decorator: the view needs a signed-in user (of `role`, when given).

    A page sends the browser to the sign-in form; an event stream or an htmx request gets 401.
    An agent on an admin page gets 403.
    """
    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                if request.method == "GET" and _wants_page():
                    return redirect(url_for("console.signin", next=request.full_path))
                abort(401, "sign in to the console first")
            if role is not None and user.role != role:
                abort(403, f"this page is for the {role}s of the console")
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _wants_page() -> bool:
    return ("text/html" in request.headers.get("Accept", "")
            and not request.headers.get("HX-Request"))
