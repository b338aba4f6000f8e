"""Signing in to the console and out of it."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import redirect, render_template, request, session, url_for

from ivr.console import auth
from ivr.console.blueprint import bp

log = logging.getLogger(__name__)


@bp.get("/signin")
def signin():
    """The sign-in form: one token field, admin or agent."""
    return render_template("console/signin.html", next=_safe_next(), error=None)


@bp.post("/signin")
def signin_post():
    """Sign in with the admin token or an agent token, then go where the user was heading."""
    user = auth.sign_in(request.form.get("token", ""))
    if user is None:
        log.warning("console sign-in refused", extra={"address": request.remote_addr})
        return render_template("console/signin.html", next=_safe_next(),
                               error="That token is not the admin token or an agent's token."
                               ), 403
    home = url_for("console.wallboard") if user.is_admin else url_for("console.agent")
    return redirect(_safe_next() or home)


@bp.post("/signout")
def signout():
    """End the session."""
    session.clear()
    return redirect(url_for("console.signin"))


def _safe_next() -> str:
    """Where to go after signing in: only a console path on this site."""
    target = request.values.get("next", "")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return ""
    return target.rstrip("?")
