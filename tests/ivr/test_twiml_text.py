"""The webhook's document text (`twiml_text`) is exactly what twilio's `str(response)` gives,
for every shape of TwiML tree and every character a caller's data may bring."""

from __future__ import annotations

import random

import pytest
from twilio.twiml import GenericNode
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.engine import document
from ivr.core.engine.document import twiml_text

# Markup, quotes, line ends and tabs, non-ASCII, a lone surrogate, XML-forbidden controls.
ODD = ["&", "<", ">", '"', "'", "\r", "\n", "\t", "é", "한국어", "\ud800", "\x00", "\ufffe",
       "&amp;", "]]>", " ", "0", ""]


def _words(rng: random.Random) -> str:
    return "".join(rng.choice(ODD + ["press 1", "agent", "https://x/y?a=1&b=2"])
                   for _ in range(rng.randint(0, 6)))


def _tree(rng: random.Random, depth: int = 0) -> VoiceResponse:
    r = VoiceResponse()
    for _ in range(rng.randint(0, 4)):
        pick = rng.randrange(8)
        if pick == 0:
            r.say(_words(rng), language=rng.choice([None, "en-US", "ko-KR"]),
                  voice=rng.choice([None, "Polly.Joanna"]))
        elif pick == 1:
            g = r.gather(input="dtmf", num_digits=rng.randint(1, 5), timeout=5,
                         action=_words(rng), method="POST",
                         action_on_empty_result=rng.choice([None, True, False]))
            g.say(_words(rng))
            g.pause(length=rng.choice([1, 2.5]))
            g.play(_words(rng))
        elif pick == 2:
            r.redirect(_words(rng), method="POST")
        elif pick == 3:
            r.enqueue(_words(rng) or "support", wait_url=_words(rng), wait_url_method="POST")
        elif pick == 4:
            s = r.start().stream(url="wss://x/s", name=_words(rng), track="inbound_track")
            s.parameter(name="choices", value=_words(rng))
        elif pick == 5:
            r.append(_words(rng))  # a bare string: the text, or the previous verb's tail
        elif pick == 6 and depth < 2:
            r.append(_tree(rng, depth + 1))
        else:
            r.hangup()
    return r


def test_random_documents_match_twilio_to_the_character():
    for seed in range(500):
        r = _tree(random.Random(seed))
        assert twiml_text(r) == str(r), f"seed {seed}"


def test_an_engine_document_matches():
    r = VoiceResponse()
    g = r.gather(input="dtmf", num_digits=1, timeout=5, method="POST",
                 action="https://ivr.example.com/voice/gather?flow=main&node=m&t=3",
                 action_on_empty_result=False)
    g.say('Press 1 for "orders" & <returns>.', language="en-US", voice="Polly.Joanna")
    r.redirect("https://ivr.example.com/voice/continue?flow=main&node=m&t=3", method="POST")
    r.hangup()
    assert twiml_text(r) == str(r) == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="https://ivr.example'
        '.com/voice/gather?flow=main&amp;node=m&amp;t=3" actionOnEmptyResult="false" '
        'input="dtmf" method="POST" numDigits="1" timeout="5"><Say language="en-US" '
        'voice="Polly.Joanna">Press 1 for "orders" &amp; &lt;returns&gt;.</Say></Gather>'
        '<Redirect method="POST">https://ivr.example.com/voice/continue?flow=main&amp;'
        'node=m&amp;t=3</Redirect><Hangup /></Response>')


def test_text_values_and_string_verbs_replace_each_other_as_twilio_does():
    r = VoiceResponse()
    say = r.say("first")
    say.append("second")  # replaces the text
    r.append("tail one")
    r.append("tail two")  # replaces the tail
    r.add_child("Custom", "", flag=True, ratio=0.5)
    assert twiml_text(r) == str(r)


@pytest.mark.parametrize("make", [
    lambda r: r.append(GenericNode("{urn:x}Tag", "namespaced")),
    lambda r: r.add_child("Data", {"a": 1}),  # a dict value: to_xml writes it as JSON
    lambda r: r.add_child("Count", 5),  # a number as text: to_xml refuses it
])
def test_trees_it_does_not_mirror_are_left_to_twilio(make, monkeypatch):
    def tree() -> VoiceResponse:
        r = VoiceResponse()
        make(r)
        return r

    try:
        expected: str | type[Exception] = str(tree())  # (to_xml turns a dict value to JSON)
    except Exception as exc:  # whatever twilio raises, so must we
        expected = type(exc)
    used = []
    original = VoiceResponse.to_xml
    monkeypatch.setattr(VoiceResponse, "to_xml",
                        lambda self, *a: used.append(1) or original(self, *a))
    if isinstance(expected, str):
        assert twiml_text(tree()) == expected
    else:
        with pytest.raises(expected):
            twiml_text(tree())
    assert used, "twilio's own serialiser rendered it"
    assert twiml_text(VoiceResponse()).startswith(document.DECLARATION)
