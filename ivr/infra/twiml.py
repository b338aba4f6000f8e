"""HTTP responses that carry TwiML, shared by every package's webhooks."""

from __future__ import annotations

import re

from flask import Response
from twilio.twiml.voice_response import VoiceResponse

# Characters XML 1.0 forbids anywhere in a document (a caller's name may hold any of them);
# one of them makes Twilio refuse the whole document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class StoredDocument:
    """A TwiML document rendered earlier and kept as text (a call's current document)."""

    def __init__(self, xml: str) -> None:
        self.xml = xml

    def __str__(self) -> str:
        return self.xml


def twiml_response(response: VoiceResponse | StoredDocument) -> Response:
    """The TwiML document as a text/xml response, without characters XML forbids."""
    return Response(_NOT_XML.sub("", str(response)), mimetype="text/xml")


def goodbye(text: str, language: str | None = None, voice: str | None = None) -> Response:
    """Say `text` (in a <Say> language and voice, when given), then hang up."""
    r = VoiceResponse()
    r.say(text, **{k: v for k, v in (("language", language), ("voice", voice)) if v})
    r.hangup()
    return twiml_response(r)
