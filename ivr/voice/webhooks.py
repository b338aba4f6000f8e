"""Twilio voice webhooks. Each view parses the form and hands it to `ivr.voice.steps`."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ivr.core.engine.types import Input, InputKind
from ivr.infra import metrics, paths
from ivr.infra.security import twilio_signed
from ivr.infra.twiml import twiml_response
from ivr.voice import steps
from ivr.voice.safety import safe_twiml

bp = Blueprint("voice", __name__)


@bp.post(paths.INCOMING)
@twilio_signed
def incoming():
    """A new call: Twilio's voice URL for our numbers."""
    form, _ = _sent()
    return twiml_response(steps.start_call(form))


@bp.post(paths.GATHER)
@twilio_signed
def gather():
    """Keys pressed or words heard at a node (a <Gather> action, or a speech redirect)."""
    form, args = _sent()
    choice = args.get("choice")
    if choice is not None or form.get("SpeechResult") is not None:
        given = Input(
            InputKind.SPEECH,
            text=args.get("transcript") or form.get("SpeechResult", ""),
            confidence=_float(args.get("confidence") or form.get("Confidence")),
            choice=choice,
            needs_confirmation=args.get("confirm") == "1",
            decision_ms=_float(args.get("decision_ms")),
        )
    else:
        given = Input(InputKind.DIGITS, digits=form.get("Digits", ""))
    return twiml_response(steps.resume_call(form, args, given))


@bp.post(paths.CONTINUE)
@twilio_signed
def proceed():
    """A <Gather> ended without input, or a message finished playing."""
    form, args = _sent()
    return twiml_response(steps.resume_call(form, args, Input(InputKind.NO_INPUT)))


@bp.post(paths.DIALED)
@twilio_signed
def dialed():
    """A <Dial> to an outside number ended."""
    form, args = _sent()
    given = Input(InputKind.DIAL_RESULT, status=form.get("DialCallStatus", ""))
    return twiml_response(steps.resume_call(form, args, given))


@bp.post(paths.RECORDED)
@twilio_signed
def recorded():
    """A voicemail <Record> ended."""
    form, args = _sent()
    seconds = form.get("RecordingDuration")
    given = Input(InputKind.RECORDED, recording_url=form.get("RecordingUrl", ""),
                  recording_seconds=int(seconds) if seconds and seconds.isdigit() else None)
    return twiml_response(steps.resume_call(form, args, given))


@bp.post(paths.STATUS)
@twilio_signed
def status():
    """Call status callback: the call ended (or progressed)."""
    try:
        steps.end_call(_sent()[0])
    except Exception:  # a lost status update must not make Twilio retry forever
        current_app.logger.exception("status callback failed")
        metrics.ERRORS.labels("status").inc()
    return ("", 204)


@bp.post(paths.FALLBACK)
@twilio_signed
def fallback():
    """Twilio's fallback URL: works with Redis and the database both down."""
    current_app.logger.error(
        "twilio fallback", extra={"error_code": request.form.get("ErrorCode"),
                                  "error_url": request.form.get("ErrorUrl")})
    return twiml_response(safe_twiml(current_app, "twilio_fallback"))


def _sent() -> tuple[dict[str, str], dict[str, str]]:
    """The form and the query as plain dicts (first value of each key). A key missing from
    werkzeug's MultiDict costs an exception on every `.get`, and most webhooks miss several."""
    return request.form.to_dict(), request.args.to_dict()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
