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
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
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
from speech.live.capacity import streams_of
from speech.live.session import heard_words
from speech.recognizer import recognize_audio

log = logging.getLogger(__name__)

bp = Blueprint("speech_fallback", __name__)

RECORD_SECONDS = 6  # a menu answer is a word or two
RECORD_SILENCE = 2  # seconds of silence that end the recording
# The recording is fetched inside a webhook that Twilio abandons after 15 s: the whole fetch,
# retries included, has one budget, and no single wait may be longer than DOWNLOAD_WAIT.
DOWNLOAD_BUDGET = 8.0
DOWNLOAD_WAIT = 3.0  # a connection, or the next bytes; Twilio's API answers in milliseconds
DOWNLOAD_TRIES = 3  # Twilio can take a moment to make a new recording available
MAX_REDIRECTS = 2
# RECORD_SECONDS of 8 kHz 16-bit audio is about 100 kB; anything far larger is not an answer.
MAX_RECORDING_BYTES = 4 << 20
# Twilio's API, where RecordingUrl points in production (TWILIO_API_BASE may name another).
TWILIO_API = "https://api.twilio.com"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def redirect_to_record(app: Flask, call_sid: str, flow: str, node: str) -> bool:
    """Send a live call at `flow.node` to the recording fallback; False when it moved on."""
    state = call_state(app, call_sid)
    if state is None or (state.flow, state.node) != (flow, node):
        return False
    log.warning("speech falls back to recording", extra={"call_sid": call_sid, "node": node})
    return redirect_call(app, call_sid,
                         services_of(app).urls.url(paths.SPEECH_RECORD, **state.at()))


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
    at = {"flow": flow, "node": node, "t": args.get("t")}  # the menu's turn, carried on
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
        # Seconds of C: on a recognition thread, never on the event loop (gevent).
        decision = streams_of(app).pool.run(
            recognize_audio, audio, menu_choices(flows, menu, state.language), model)
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


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a plain http(s) URL; None for anything that is not one.

    Userinfo, whitespace, control characters and backslashes are refused outright: they are
    where URL parsers disagree, so the host we check could differ from the host we reach.
    """
    if any(c <= " " or c in "\\\x7f" for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or "@" in parts.netloc or not parts.hostname:
        return None
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


def _api_bases(app: Flask) -> list[str]:
    """Where recordings may come from: the configured Twilio API base, and Twilio's own."""
    configured = (services_of(app).config.get("TWILIO_API_BASE") or "").rstrip("/")
    return [base for base in (configured, TWILIO_API) if base]


def _trusted(app: Flask, url: str) -> bool:
    """Whether `url` is on the Twilio API: same scheme, host and port, under its path.

    Recordings are fetched from there only, and the account's credentials go nowhere else.
    """
    origin = _origin(url)
    path = urlsplit(url).path
    if origin is None or any(part in (".", "..") for part in unquote(path).split("/")):
        return False  # dot segments are resolved by the client: they could leave the prefix
    for base in _api_bases(app):
        prefix = urlsplit(base).path.rstrip("/")
        if origin == _origin(base) and (not prefix or path.startswith(prefix + "/")):
            return True
    return False


def download_recording(app: Flask, url: str) -> Audio:
    """Fetch a recording from the Twilio API as WAV (`RecordingUrl` + `.wav`) and decode it.

    The whole fetch, every try and redirect included, ends within `DOWNLOAD_BUDGET` seconds
    (plus at most one `DOWNLOAD_WAIT`) and reads at most `MAX_RECORDING_BYTES`: the webhook
    that waits for it is abandoned by Twilio after 15 s.

    Raises:
        AudioError: the URL is not on the Twilio API, or the recording could not be fetched
            in time, or is too large, or is not audio.
    """
    if not _trusted(app, url):
        raise AudioError(f"refused to fetch the recording {url}: it is not on the Twilio API "
                         f"({' or '.join(_api_bases(app))}); set TWILIO_API_BASE if Twilio is "
                         "reached elsewhere")
    if not urlsplit(url).path.rsplit("/", 1)[-1].count("."):
        url += ".wav"
    config = services_of(app).config
    auth = (config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"])
    deadline = time.monotonic() + DOWNLOAD_BUDGET
    last = ""
    for attempt in range(DOWNLOAD_TRIES):
        if attempt:
            time.sleep(max(0.0, min(0.5 * attempt, deadline - time.monotonic())))
        if time.monotonic() >= deadline:
            last = f"{last} (gave up after {DOWNLOAD_BUDGET:g} s)"
            break
        try:
            with _get(app, url, auth, deadline) as resp:
                status = resp.status_code
                if status == 200:
                    return read_wav(_body(resp, url, deadline), "recording")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            last = str(exc)
            continue
        last = f"HTTP {status}"
        if status != 404:  # 404: Twilio has not made the recording available yet
            break
    raise AudioError(f"could not download the recording {url}: {last}")


def _wait(deadline: float) -> float:
    """How long one connect or read may wait: `DOWNLOAD_WAIT`, or what is left of the budget."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise requests.Timeout(f"no answer within {DOWNLOAD_BUDGET:g} s")
    return min(DOWNLOAD_WAIT, left)


def _get(app: Flask, url: str, auth: tuple[str, str] | None,
         deadline: float) -> requests.Response:
    """One streamed GET; redirects (Twilio may serve media elsewhere) are followed by hand.

    A redirect must lead to https (or stay on the Twilio API); credentials go to the API only.
    """
    for _ in range(MAX_REDIRECTS + 1):
        wait = _wait(deadline)
        resp = requests.get(url, auth=auth if _trusted(app, url) else None, stream=True,
                            timeout=(wait, wait), allow_redirects=False,
                            headers={"Accept-Encoding": "identity"})
        if not resp.is_redirect:
            return resp
        target = urljoin(url, resp.headers["Location"])
        resp.close()
        origin = _origin(target)
        if origin is None or (origin[0] != "https" and not _trusted(app, target)):
            raise AudioError(f"the recording {url} redirects to {target}: not an https URL")
        url = target
    raise AudioError(f"the recording {url} redirects more than {MAX_REDIRECTS} times")


def _body(resp: requests.Response, url: str, deadline: float) -> bytes:
    """The response's body, read against the deadline and the size cap."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RECORDING_BYTES:
        raise AudioError(f"the recording {url} is {declared} bytes, larger than the "
                         f"{MAX_RECORDING_BYTES} a menu answer can take")
    data = bytearray()
    # read1: each read returns what has arrived, so the deadline is checked between reads
    # (a plain read would wait to fill its buffer however slowly the bytes come).
    while chunk := resp.raw.read1(1 << 16):
        data += chunk
        if len(data) > MAX_RECORDING_BYTES:
            raise AudioError(f"the recording {url} is larger than the {MAX_RECORDING_BYTES} "
                             "bytes a menu answer can take; stopped reading")
        if time.monotonic() > deadline:
            raise requests.Timeout(f"the recording took longer than {DOWNLOAD_BUDGET:g} s")
    return bytes(data)
