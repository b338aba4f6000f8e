"""The hold-queue wait handler: position, an estimate, hold music, a callback offer."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

DEFAULT_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"


def wait_twiml(form, args) -> VoiceResponse:
    """TwiML played to a waiting caller (Twilio loops it while they wait)."""
    r = VoiceResponse()
    position = form.get("QueuePosition", "")
    if position.isdigit():
        r.say(f"You are number {int(position)} in line.")
    r.play(DEFAULT_MUSIC)
    return r


def left_twiml(form, args) -> VoiceResponse:
    """TwiML after the caller leaves the queue without being bridged."""
    r = VoiceResponse()
    r.hangup()
    return r
