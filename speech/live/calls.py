"""What live speech needs from a live call: its state, public URLs, and a REST redirect when
an answer is heard. Shared by the websocket and the `<Record>` fallback."""

from __future__ import annotations

import logging

import redis
from flask import Flask

from ivr.core.callstate import CallState
from ivr.errors import StateUnavailable
from ivr.infra import paths
from ivr.infra.services import services_of

log = logging.getLogger(__name__)

ENDED_KEY = "ivr:speech:ended:{stream_sid}"  # streams we closed ourselves
ENDED_TTL = 600


def websocket_url(app: Flask) -> str:
    """The wss:// URL of the media stream socket (Twilio connects to wss only)."""
    return services_of(app).urls.websocket(paths.SPEECH_STREAM)


def call_state(app: Flask, call_sid: str) -> CallState | None:
    """The call's state, or None when it is unknown, over, or unreadable (logged)."""
    try:
        return services_of(app).calls.load(call_sid)
    except StateUnavailable as exc:
        log.error("call state unavailable for %s: %s", call_sid, exc)
        return None


def redirect_call(app: Flask, call_sid: str, url: str) -> bool:
    """Point the live call at `url`; False (logged) when the provider refuses."""
    try:
        services_of(app).telephony.redirect(call_sid, url)
    except Exception as exc:  # TelephonyError, or the network: the caller keeps the keypad menu
        log.error("could not redirect call %s to %s: %s", call_sid, url, exc)
        return False
    log.info("call redirected", extra={"call_sid": call_sid, "url": url})
    return True


def mark_stream_ended(app: Flask, stream_sid: str) -> None:
    """Remember that we closed `stream_sid` on purpose, so its error report is not a failure."""
    try:
        services_of(app).redis.set(ENDED_KEY.format(stream_sid=stream_sid), 1, ex=ENDED_TTL)
    except redis.RedisError as exc:
        log.warning("could not mark stream %s ended: %s", stream_sid, exc)


def stream_was_ended(app: Flask, stream_sid: str) -> bool:
    """Whether we closed `stream_sid` ourselves."""
    try:
        return bool(services_of(app).redis.exists(ENDED_KEY.format(stream_sid=stream_sid)))
    except redis.RedisError:
        return False
