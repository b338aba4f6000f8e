"""HTTP responses that carry TwiML, shared by every package's webhooks."""

from __future__ import annotations

from flask import Response
from twilio.twiml.voice_response import VoiceResponse


def twiml_response(response: VoiceResponse) -> Response:
    """The TwiML document as a text/xml response."""
    return Response(str(response), mimetype="text/xml")


def goodbye(text: str) -> Response:
    """Say `text`, then hang up."""
    r = VoiceResponse()
    r.say(text)
    r.hangup()
    return twiml_response(r)
