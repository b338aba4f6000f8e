"""The callback web API, the hosted page and the widget; `init_app` wires the package in.

POST /callbacks            JSON {phone, name, reason, preferred_time?, queue?, consent_text?}
                           -> 202 {id, status, position, estimated_wait_seconds, scheduled_for,
                                   cancel_token}
GET  /callbacks/<id>       status
DELETE /callbacks/<id>     cancel (token in JSON, ?token= or X-Cancel-Token); also POST .../cancel
GET  /callbacks/info       the number to call, consent text and the expected wait now
GET  /callback             a hosted page with the widget; /callbacks/widget.js embeds anywhere
"""

from __future__ import annotations

import datetime as dt
import logging

import phonenumbers
from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request

from callback import service, webhooks
from callback.deps import deps_of
from callback.errors import CallbackError, InvalidRequest, RateLimited
from callback.schedule import get_request, hours_of, queue_name
from callback.settings import DEFAULTS
from callback.waits import wait_for_a_new_request
from ivr.core.hours import is_open, next_open
from ivr.infra.hooks import CALLBACK_REQUESTS

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__, url_prefix="/callbacks", static_folder="static",
               static_url_path="/static")
page_bp = Blueprint("callback_page", __name__, template_folder="templates")


@bp.errorhandler(CallbackError)
def _callback_error(exc: CallbackError):
    body = {"error": exc.code, "message": str(exc)}
    resp = jsonify(body)
    resp.status_code = exc.status
    if isinstance(exc, RateLimited):
        resp.headers["Retry-After"] = str(exc.retry_after)
        body["retry_after"] = exc.retry_after
        resp.set_data(jsonify(body).get_data())
    return resp


@bp.after_request
def _cors(resp: Response) -> Response:
    # The widget posts from shop pages on other origins; the API holds no cookies.
    resp.headers["Access-Control-Allow-Origin"] = str(
        current_app.config.get("CALLBACK_CORS_ORIGIN") or "*")
    resp.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Cancel-Token"
    resp.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
    return resp


def _json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequest("Send a JSON object, e.g. {\"phone\": \"+12125551234\"}.")
    return data


def parse_preferred_time(value) -> dt.datetime | None:
    """None / "" / "asap" mean as soon as possible; otherwise an ISO time with its zone."""
    if value in (None, "") or (isinstance(value, str) and value.strip().lower() == "asap"):
        return None
    if not isinstance(value, str):
        raise InvalidRequest("preferred_time must be \"asap\" or an ISO date and time.")
    try:
        at = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"preferred_time '{value}' is not a date and time: use e.g. "
            "2026-05-04T15:00:00-04:00, or \"asap\"."
        ) from None
    if at.tzinfo is None:
        raise InvalidRequest("preferred_time needs a time zone offset, e.g. -04:00 or Z.")
    return at.astimezone(dt.UTC)


@bp.post("")
def create():
    """Ask for a callback."""
    data = _json()
    deps = deps_of(current_app)
    for key in ("phone", "name", "reason", "queue", "consent_text"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InvalidRequest(f"'{key}' must be text.")
    created = service.create_request(
        deps,
        phone=data.get("phone") or "",
        name=data.get("name") or "",
        reason=data.get("reason") or "",
        queue=data.get("queue") or None,
        preferred_time=parse_preferred_time(data.get("preferred_time")),
        client_address=request.remote_addr,
        consent_text=data.get("consent_text") or str(deps.setting("CALLBACK_CONSENT_TEXT")),
    )
    body = service.describe(deps, created.request)
    body["cancel_token"] = created.cancel_token
    body["merged"] = created.merged
    if created.merged:
        body["message"] = "You already asked us to call this number; we kept your place."
    return jsonify(body), 202


@bp.get("/<public_id>")
def show(public_id: str):
    """The status of a request."""
    deps = deps_of(current_app)
    return jsonify(service.describe(deps, get_request(deps, public_id)))


@bp.route("/<public_id>", methods=["DELETE"])
@bp.post("/<public_id>/cancel")
def cancel(public_id: str):
    """Cancel with the token returned at creation."""
    data = request.get_json(silent=True) or {}
    token = (data.get("cancel_token") if isinstance(data, dict) else None) \
        or request.args.get("token") or request.headers.get("X-Cancel-Token") or ""
    deps = deps_of(current_app)
    req = service.cancel(deps, public_id, token)
    return jsonify(service.describe(deps, req))


@bp.get("/info")
def info():
    """What the widget shows before anyone asks: our number, consent text, the wait now."""
    return jsonify(widget_info(current_app, request.args.get("queue") or None))


def widget_info(app: Flask, queue: str | None = None) -> dict:
    """The toll-free number (from flows.yaml `numbers`), consent text and expected wait."""
    deps = deps_of(app)
    flows = deps.flows()
    number = next(iter(flows.numbers), None) or deps.config.get("TWILIO_FROM_NUMBER") or ""
    display = number
    try:
        display = phonenumbers.format_number(phonenumbers.parse(number, None),
                                             phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        pass
    queue = queue_name(deps, queue)
    now = deps.now()
    hours = hours_of(deps, queue)
    is_open_now = is_open(hours, now)
    opens = None if is_open_now else next_open(hours, now)
    return {
        "phone_number": number,
        "phone_display": display,
        "consent_text": str(deps.setting("CALLBACK_CONSENT_TEXT")),
        "estimated_wait_seconds": wait_for_a_new_request(deps, queue, now) if is_open_now
        else None,
        # The team's opening hours; the caller's own calling hours are known only once they
        # give their number (the answer to POST /callbacks says when it will be).
        "open_now": is_open_now,
        "opens_at": opens.isoformat() if opens else None,
        "calling_window": str(deps.setting("CALLBACK_CALLING_WINDOW")),
        "queue": queue,
    }


@page_bp.get("/callback")
def hosted_page():
    """A page with the widget, for shops that only link to us."""
    data = widget_info(current_app)
    return render_template("callback_page.html", info=data)


def init_app(app: Flask) -> None:
    """Defaults for CALLBACK_* settings, the engine's callback hook, and the blueprints."""
    for key, value in DEFAULTS.items():
        # Explicit config and the environment (see ivr.infra.config) win over the default.
        app.config.setdefault(key, value)
    # The engine asks for callbacks through its ports; this is what answers.
    app.extensions[CALLBACK_REQUESTS] = service.request_from_call
    app.register_blueprint(bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(page_bp)
