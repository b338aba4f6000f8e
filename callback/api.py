"""The callback web API, the hosted page and the widget; `init_app` wires the package in.

POST /callbacks            JSON {phone, consent: true, name?, reason?, preferred_time?, queue?,
                                 language?, consent_version?, altcha}
                           -> 202 {id, token, status: "received", phone, message}, whether or
                              not the number was already waiting (one call is placed either way)
GET  /callbacks/<id>       status, place in line, expected wait (X-Callback-Token: <token>)
DELETE /callbacks/<id>     cancel (the token in X-Callback-Token or the JSON body {"token"});
                           also POST .../cancel
GET  /callbacks/challenge  a proof-of-work challenge (ALTCHA) for the next POST
GET  /callbacks/info       the number to call, consent text and the expected wait now (?lang=)
GET  /callbacks/strings/<lang>  the widget's sentences in a flow language, and its locale
GET  /callback             a hosted page with the widget (?lang=bn); /callbacks/static/widget.js
                           embeds it

Only this service's own pages and CALLBACK_ALLOWED_ORIGINS may post (CORS, and a 403 for a
request whose Origin is another site); tokens are never taken from a URL, which lands in logs.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import phonenumbers
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_cors import CORS
from werkzeug.exceptions import RequestEntityTooLarge

from callback import intake, proof, service, webhooks
from callback.consent import Consent
from callback.deps import deps_of
from callback.errors import (
    CallbackError,
    ConsentRequired,
    InvalidRequest,
    OriginRefused,
    RateLimited,
    TooLarge,
    excerpt,
)
from callback.languages import (
    consent_text,
    format_when,
    page_language,
    requested_language,
    web_text,
    widget_strings,
)
from callback.schedule import hours_of, queue_name
from callback.settings import DEFAULTS
from callback.waits import wait_for_a_new_request
from ivr.core.hours import is_open, next_open
from ivr.infra.hooks import CALLBACK_REQUESTS
from ivr.infra.services import services_of

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__, url_prefix="/callbacks", static_folder="static",
               static_url_path="/static")
page_bp = Blueprint("callback_page", __name__, template_folder="templates")
TOKEN_HEADER = "X-Callback-Token"


@bp.errorhandler(CallbackError)
def _callback_error(exc: CallbackError):
    body = {"error": exc.code, "message": str(exc)}
    if isinstance(exc, RateLimited):
        body["retry_after"] = exc.retry_after
    resp = jsonify(body)
    resp.status_code = exc.status
    if isinstance(exc, RateLimited):
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc):
    return _callback_error(TooLarge(
        f"The request is too large: a callback request is at most {intake.BODY_LIMIT} bytes."))


def allowed_origins(app: Flask) -> list[str]:
    """CALLBACK_ALLOWED_ORIGINS as origins ('https://shop.example'), without trailing slashes."""
    raw = str(app.config.get("CALLBACK_ALLOWED_ORIGINS") or "")
    return [o.strip().rstrip("/") for o in raw.split(",") if o.strip()]


def _own_origins() -> set[str]:
    """This service's origin: its public base, and the host this request was made to."""
    own = {request.host_url.rstrip("/")}
    configured = services_of(current_app).urls.configured
    if configured:
        parts = urlsplit(configured)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return own


@bp.before_request
def _guard_origin_and_size():
    request.max_content_length = intake.BODY_LIMIT
    origin = request.headers.get("Origin")
    if request.method in ("GET", "HEAD", "OPTIONS") or not origin:
        return None  # reading is harmless; a client without a page sends no Origin
    if origin.rstrip("/") in _own_origins() or origin.rstrip("/") in allowed_origins(
            current_app):
        return None
    raise OriginRefused(
        "Callback requests are taken only from this service's own pages and the sites in "
        "CALLBACK_ALLOWED_ORIGINS.")


def _token(body: dict | None = None) -> str:
    """The token from the X-Callback-Token header or the JSON body; never from the URL."""
    token = request.headers.get(TOKEN_HEADER) or ""
    if not token and isinstance(body, dict) and isinstance(body.get("token"), str):
        token = body["token"]
    return token[:128]


def _client_address() -> str | None:
    """The client's address as an IP in its canonical form; a trusted proxy that hands on
    something else (a 300-character X-Forwarded-For) is kept to the column's 64 characters."""
    raw = request.remote_addr
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return excerpt(raw, 60)


@bp.post("")
def create():
    """Ask for a callback."""
    deps = deps_of(current_app)
    if request.mimetype != "application/json":
        # Also keeps out the "simple" cross-site posts a browser sends without asking first.
        raise InvalidRequest("Send the request as JSON, with Content-Type: application/json.")
    form = intake.parse_form(intake.read_json(request.get_data(cache=False)))
    language = requested_language(deps, form.language)
    # The wording in the visitor's language is what they agreed to, and what is stored.
    consent = Consent.of(consent_text(deps, language))
    if form.consent_version and form.consent_version != consent.version:
        raise ConsentRequired("The consent wording changed since this page was loaded: reload "
                              "the page, read it again and tick the box.")
    proof.check(deps, form.proof)
    created = service.create_request(
        deps, phone=form.phone, name=form.name, reason=form.reason, queue=form.queue,
        preferred_time=form.preferred_time, client_address=_client_address(),
        consent=consent, language=language)
    # The same answer whether or not the number was already waiting: the details are for
    # whoever holds the token (GET /callbacks/<id>).
    return jsonify({
        "id": created.public_id,
        "token": created.token,
        "status": "received",
        "phone": service.mask_number(created.request.phone),
        "message": web_text(deps, language, "web.received"),
    }), 202


@bp.get("/<public_id>")
def show(public_id: str):
    """The status of a request, for the holder of its token."""
    deps = deps_of(current_app)
    return jsonify(service.describe(deps, service.open_request(deps, public_id, _token()),
                                    public_id))


@bp.route("/<public_id>", methods=["DELETE"])
@bp.post("/<public_id>/cancel")
def cancel(public_id: str):
    """Cancel with the token given at creation."""
    body = request.get_json(silent=True)
    deps = deps_of(current_app)
    req = service.cancel(deps, public_id, _token(body))
    return jsonify(service.describe(deps, req, public_id))


@bp.get("/challenge")
def challenge():
    """A proof-of-work challenge for the widget to solve before it posts."""
    resp = jsonify(proof.new_challenge(deps_of(current_app)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/info")
def info():
    """What the widget shows before anyone asks: our number, consent text, the wait now."""
    return jsonify(widget_info(current_app, request.args.get("queue") or None,
                               request.args.get("lang") or None))


@bp.get("/strings", defaults={"lang": ""})
@bp.get("/strings/<lang>")
def strings(lang: str):
    """The widget's sentences in a flow language (the default for an unknown one), with the
    locale its numbers and dates are written in."""
    resp = jsonify(widget_strings(deps_of(current_app), lang))
    # The same for everyone until flows.yaml changes: browsers and caches may keep it a while.
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def widget_info(app: Flask, queue: str | None = None, lang: str | None = None) -> dict:
    """The toll-free number (from flows.yaml `numbers`), consent text in the page's language
    and expected wait."""
    deps = deps_of(app)
    flows = deps.flows()
    language = page_language(deps, lang)
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
    consent = Consent.of(consent_text(deps, language))
    return {
        "phone_number": number,
        "phone_display": display,
        "consent_text": consent.text,
        "consent_version": consent.version,
        "proof_of_work": proof.is_required(deps),
        "estimated_wait_seconds": wait_for_a_new_request(deps, queue, now) if is_open_now
        else None,
        # The team's opening hours; the caller's own calling hours are known only once they
        # give their number (the answer to POST /callbacks says when it will be).
        "open_now": is_open_now,
        "opens_at": opens.isoformat() if opens else None,
        "calling_window": str(deps.setting("CALLBACK_CALLING_WINDOW")),
        "queue": queue,
        "language": language,
        # For pages without scripts: the opening time in the team's own time zone.
        "opens_text": format_when(deps, language, opens, hours.timezone) if opens else None,
    }


@page_bp.get("/callback")
def hosted_page():
    """A page with the widget, for shops that only link to us; `?lang=bn` picks its language
    (an unknown one, the flows' default)."""
    deps = deps_of(current_app)
    language = page_language(deps, request.args.get("lang"))
    data = widget_info(current_app, lang=language)
    words = widget_strings(deps, language)

    def t(key: str, **values) -> str:
        return web_text(deps, language, key, **values)

    return render_template("callback_page.html", info=data, language=language, words=words,
                           t=t)


def init_app(app: Flask) -> None:
    """Defaults for CALLBACK_* settings, the engine's callback hook, and the blueprints."""
    for key, value in DEFAULTS.items():
        # Explicit config and the environment (see ivr.infra.config) win over the default.
        app.config.setdefault(key, value)
    # The engine asks for callbacks through its ports; this is what answers.
    app.extensions[CALLBACK_REQUESTS] = service.request_from_call
    # Pages on the allowed origins may read the answers (the API holds no cookies); the
    # service's own pages need no CORS at all. Refusal of other origins is `_guard_origin...`.
    app_wide = app.after_request_funcs.setdefault(None, [])
    before = list(app_wide)
    CORS(app, resources={r"/callbacks/*": {
        "origins": allowed_origins(app), "allow_headers": ["Content-Type", TOKEN_HEADER],
        "methods": ["GET", "POST", "DELETE", "OPTIONS"], "max_age": 600}})
    # flask-cors hooks every response of the app; only these blueprints serve /callbacks/*,
    # so its hook runs for their requests alone, not on every call webhook. (An error answer
    # still gets its headers: flask-cors wraps the app's error handlers for that.)
    for hook in [f for f in app_wide if f not in before]:
        app_wide.remove(hook)
        for name in (bp.name, webhooks.bp.name):
            app.after_request_funcs.setdefault(name, []).append(hook)
    app.register_blueprint(bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(page_bp)
