"""The console's one blueprint, and what every page of it shares: the CSRF check that runs
before any POST, security headers, and error pages (HTML for a browser, JSON for htmx).

Page modules (`wallboard`, `agent`, `callbacks`, `flows`, `reports`, `signin`) add their views
to `bp`; views stay thin: read through the services, render a template.
"""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ivr.console import auth

log = logging.getLogger(__name__)

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")


@bp.before_request
def _csrf() -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        auth.check_csrf()


@bp.after_request
def _headers(response: Response) -> Response:
    # The console is never framed, and never cached between users.
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
    if not request.path.startswith("/console/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError):
    return problem(400, "This form has expired or did not come from the console "
                         f"({exc.description}). Reload the page and try again.")


@bp.errorhandler(redis.RedisError)
@bp.errorhandler(SQLAlchemyError)
def _backend_down(exc: Exception):
    which = "Redis" if isinstance(exc, redis.RedisError) else "The database"
    log.warning("console page without its backend", extra={"path": request.path,
                                                            "error": str(exc)[:200]})
    response = current_app.make_response(problem(
        503, f"{which} is unavailable right now, so this page cannot show true figures. "
             "Calls are still answered; try again in a moment."))
    response.headers["Retry-After"] = "5"
    return response


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    body, status = problem(exc.code or 500, exc.description or exc.name)
    response = current_app.make_response((body, status))
    for name, value in exc.get_headers():  # Retry-After and the like
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def problem(status: int, message: str):
    """An error page for a browser; `{error, message}` JSON for htmx and scripts."""
    if request.headers.get("HX-Request") or "text/html" not in request.headers.get("Accept", ""):
        return {"error": "console_" + str(status), "message": message}, status
    return render_template("console/problem.html", status=status, message=message), status
