"""Whatever a caller ID, a name or a reason holds, the TwiML we answer with is well-formed XML.

XML 1.0 forbids most control characters and U+FFFE/U+FFFF; Twilio refuses a document holding
one, and the caller hears an application error. The callback API already cleans what it stores
(tests/security); this is the last line, at the one place every document is answered from, for
rows stored before that and for whatever else reaches a document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from twilio.twiml.voice_response import VoiceResponse

from ivr.infra.twiml import twiml_response

HOSTILE = "\x00\x0b\x1b\ufffe\uffff\x7f"


def test_forbidden_characters_are_removed_and_the_rest_kept(app):
    r = VoiceResponse()
    r.say(f"Mia{HOSTILE} <b>&amp; co")
    with app.app_context():
        body = twiml_response(r).get_data(as_text=True)
    said = ET.fromstring(body).find("Say").text
    assert said == "Mia\x7f <b>&amp; co"  # DEL is allowed in XML 1.0; markup stays text
