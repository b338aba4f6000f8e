"""When a media stream fails: record the caller's answer with `<Record>` and recognise that.

Each `<Stream>` reports to `/speech/stream-status` (its statusCallback). On `stream-error` (the
websocket could not be reached or broke) for a call still at the menu, the call is redirected to
`/speech/record`, which plays the menu prompt again (keys still work), then records a short
answer. Twilio posts the recording to `/speech/recorded`; it is downloaded with the account's
credentials, recognised with the same code as live audio (`recognize_audio`), and the call
continues from the flow engine as if the caller had answered there.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Flask, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.engine.answers import menu_choices
from ivr.core.engine.prompts import Speaker
from ivr.core.engine.types import Input, InputKind
from ivr.core.flows.schema import FlowFile, MenuNode
from ivr.errors import StateUnavailable
from ivr.infra import paths
from ivr.infra.security import twilio_signed
from ivr.infra.services import services_of
from ivr.infra.twiml import twiml_response
from ivr.voice import steps
from speech.audio import Audio, read_wav
from speech.errors import AudioError, SpeechError
from speech.live.calls import call_state, redirect_call, stream_was_ended
from speech.live.session import heard_words
from speech.recognizer import recognize_audio

log = logging.getLogger(__name__)

bp = Blueprint("speech_fallback", __name__)

RECORD_SECONDS = 6  # a menu answer is a word or two
RECORD_SILENCE = 2  # seconds of silence that end the recording
DOWNLOAD_TIMEOUT = 10
DOWNLOAD_TRIES = 3  # Twilio can take a moment to make a new recording available
TRUSTED_MEDIA_HOSTS = ("api.twilio.com",)


def redirect_to_record(app: Flask, call_sid: str, flow: str, node: str) -> bool:
    """Send a live call at `flow.node` to the recording fallback; False when it moved on."""
    state = call_state(app, call_sid)
    if state is None or (state.flow, state.node) != (flow, node):
        return False
    log.warning("speech falls back to recording", extra={"call_sid": call_sid, "node": node})
    return redirect_call(app, call_sid,
                         services_of(app).urls.url(paths.SPEECH_RECORD, flow=flow, node=node))


@bp.post(paths.SPEECH_STREAM_STATUS)
@twilio_signed
def stream_status():
    """A `<Stream>` statusCallback: on stream-error, recognise by recording instead."""
    app = current_app._get_current_object()
    form, args = request.form, request.args
    event, stream_sid = form.get("StreamEvent", ""), form.get("StreamSid", "")
    extra = {"call_sid": form.get("CallSid"), "stream_sid": stream_sid, "event": event}
    if event != "stream-error":
        log.info("stream status", extra=extra)
        return ("", 204)
    if stream_sid and stream_was_ended(app, stream_sid):
        log.info("stream closed by us reported as an error; ignored", extra=extra)
        return ("", 204)
    log.error("media stream failed: %s", form.get("StreamError") or "no reason given",
              extra=extra)
    redirect_to_record(app, form.get("CallSid", ""), args.get("flow", ""),
                       args.get("node", ""))
    return ("", 204)


def _menu(app: Flask, call_sid: str, flow: str, node: str
          ) -> tuple[CallState, FlowFile, MenuNode] | None:
    """The call's state, flows and menu when the call is still at `flow.node`, a menu."""
    try:
        state, loaded = steps.load_call(app, call_sid)
    except StateUnavailable as exc:
        log.error("call state unavailable for %s: %s", call_sid, exc)
        return None
    if state is None:
        return None
    spec = loaded.file.flows.get(flow)
    menu = spec.nodes.get(node) if spec else None
    return (state, loaded.file, menu) if isinstance(menu, MenuNode) else None


@bp.post(paths.SPEECH_RECORD)
@twilio_signed
def record():
    """The menu again (keys still work), then a short recording of the spoken answer."""
    app = current_app._get_current_object()
    form, args = request.form, request.args
    flow, node = args.get("flow", ""), args.get("node", "")
    found = _menu(app, form.get("CallSid", ""), flow, node)
    if found is None:  # not at a menu any more: carry on where the call is
        return twiml_response(steps.resume_call(form, args, Input(InputKind.NO_INPUT)))
    state, flows, menu = found
    r = VoiceResponse()
    at = {"flow": flow, "node": node}
    urls = services_of(app).urls
    gather = r.gather(input="dtmf", num_digits=1, timeout=1, method="POST",
                      action=urls.url(paths.GATHER, **at), action_on_empty_result=False)
    Speaker(flows.defaults, state.language).add(gather, menu.prompt)
    r.record(action=urls.url(paths.SPEECH_RECORDED, **at), method="POST",
             max_length=RECORD_SECONDS, timeout=RECORD_SILENCE, play_beep=True,
             trim="trim-silence", finish_on_key="0123456789*#")
    # Twilio runs the next verb when nothing was recorded: a menu's no-input path.
    r.redirect(urls.url(paths.CONTINUE, **at), method="POST")
    return twiml_response(r)


@bp.post(paths.SPEECH_RECORDED)
@twilio_signed
def recorded():
    """The recording ended: a key, or words to recognise; the flow engine takes it from here."""
    app = current_app._get_current_object()
    form, args = request.form, request.args
    digits = form.get("Digits", "")
    if len(digits) == 1 and digits in "0123456789*#":
        given = Input(InputKind.DIGITS, digits=digits)
    else:
        given = _recognised(app, form, args.get("flow", ""), args.get("node", ""))
    return twiml_response(steps.resume_call(form, args, given))


def _recognised(app: Flask, form, flow: str, node: str) -> Input:
    found = _menu(app, form.get("CallSid", ""), flow, node)
    url = form.get("RecordingUrl", "")
    if found is None or not url:
        return Input(InputKind.NO_INPUT)
    state, flows, menu = found
    model = app.extensions["speech.models"].model(state.language)
    if model is None:
        return Input(InputKind.NO_INPUT)
    try:
        audio = download_recording(app, url)
        decision = recognize_audio(audio, menu_choices(flows, menu, state.language), model)
    except SpeechError as exc:
        log.error("recorded answer not recognised: %s", exc,
                  extra={"call_sid": state.call_sid, "recording_url": url})
        return Input(InputKind.NO_INPUT)
    log.info("speech decided from a recording", extra={"call_sid": state.call_sid,
                                                       **decision.as_dict()})
    if not heard_words(decision):
        return Input(InputKind.NO_INPUT)
    match = decision.match
    return Input(InputKind.SPEECH, text=match.text, confidence=match.confidence,
                 choice=match.key or "", needs_confirmation=match.needs_confirmation,
                 decision_ms=round(decision.decision_ms, 1))


def _trusted(app: Flask, url: str) -> bool:
    """Credentials go only to Twilio (or the API base this service is configured with)."""
    host = urlsplit(url).hostname or ""
    api_base = app.config.get("TWILIO_API_BASE")
    if api_base and host == urlsplit(api_base).hostname:
        return True
    return host in TRUSTED_MEDIA_HOSTS or host.endswith(".twilio.com")


def download_recording(app: Flask, url: str) -> Audio:
    """Fetch a recording as WAV (Twilio serves `RecordingUrl` + `.wav`) and decode it.

    Raises:
        AudioError: the recording could not be fetched or is not audio.
    """
    path = urlsplit(url).path
    if not path.rsplit("/", 1)[-1].count("."):
        url += ".wav"
    auth = None
    if _trusted(app, url):
        auth = (app.config["TWILIO_ACCOUNT_SID"], app.config["TWILIO_AUTH_TOKEN"])
    last = ""
    for attempt in range(DOWNLOAD_TRIES):
        try:
            resp = requests.get(url, auth=auth, timeout=DOWNLOAD_TIMEOUT)
        except requests.RequestException as exc:
            last = str(exc)
        else:
            if resp.status_code == 200:
                return read_wav(resp.content, "recording")
            last = f"HTTP {resp.status_code}"
            if resp.status_code != 404:
                break
        if attempt + 1 < DOWNLOAD_TRIES:
            time.sleep(0.5 * (attempt + 1))
    raise AudioError(f"could not download the recording {url}: {last}")
