"""One way to build a URL for Twilio: always absolute, never a loopback Twilio cannot reach."""

from __future__ import annotations

import pytest
from flask import Flask

from ivr.errors import TelephonyError
from ivr.infra import paths
from ivr.infra.telephony import NoTelephony, TwilioTelephony, make_telephony
from ivr.infra.urls import PublicUrls, PublicUrlUnknown


def test_urls_are_built_on_the_configured_base():
    urls = PublicUrls("https://ivr.example.com/")
    assert urls.url(paths.HOLD_AGENT, queue="support", agent=1, skip=None) == (
        "https://ivr.example.com/voice/hold/agent?queue=support&agent=1")
    assert urls.websocket(paths.SPEECH_STREAM) == "wss://ivr.example.com/speech/stream"


def test_without_a_base_a_webhook_uses_the_host_twilio_reached():
    app = Flask(__name__)
    with app.test_request_context("/voice/incoming", base_url="https://abc.ngrok.app"):
        assert PublicUrls(None).url(paths.QUEUE_WAIT, queue="support") == (
            "https://abc.ngrok.app/voice/queue/wait?queue=support")


def test_without_a_base_or_a_request_no_url_is_made():
    with pytest.raises(PublicUrlUnknown, match="PUBLIC_BASE_URL is not set"):
        PublicUrls(None).url(paths.HOLD_AGENT)


def test_every_path_is_routed(app):
    routed = {rule.rule for rule in app.url_map.iter_rules()}
    assert set(paths.ALL) <= routed


@pytest.mark.parametrize(("url", "why"), [
    ("/voice/hold/agent?queue=support", "absolute URL"),
    ("http://127.0.0.1:5000/voice/hold/agent", "cannot reach http://127.0.0.1:5000"),
    ("http://localhost/voice", "cannot reach"),
])
def test_twilio_is_never_handed_a_relative_or_loopback_url(url, why):
    twilio = TwilioTelephony("AC" + "1" * 32, "token")  # api.twilio.com: never reached here
    with pytest.raises(TelephonyError, match=why):
        twilio.place_call(to="+14155550100", from_="+18005550100", url=url,
                          status_callback="https://ivr.example.com/status")


def test_a_local_emulator_may_call_back_on_loopback():
    local = TwilioTelephony("AC" + "1" * 32, "token", api_base="http://127.0.0.1:9/_twilio")
    with pytest.raises(TelephonyError, match="could not be reached"):  # nothing listens on 9
        local.place_call(to="+14155550100", from_="+18005550100",
                         url="http://127.0.0.1:5000/voice/hold/agent",
                         status_callback="http://127.0.0.1:5000/voice/hold/agent/status")


def test_no_credentials_and_no_emulator_means_no_telephony_with_a_reason():
    telephony = make_telephony({"SIMULATED_TELEPHONY": True})
    assert isinstance(telephony, NoTelephony)
    with pytest.raises(TelephonyError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        telephony.place_call(to="+14155550100", from_="+18005550100", url="https://x/y",
                             status_callback="https://x/z")


def test_queries_are_quoted_exactly_as_urlencode_quotes_them():
    import random
    from urllib.parse import urlencode

    urls = PublicUrls("https://ivr.example.com")
    rng = random.Random(7)
    alphabet = "aZ09_.~- +&=?/#%é한\x00\"'"

    def word() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    for _ in range(3000):
        params = {word() or "k": rng.choice([None, 3, 2.5, True, word()])
                  for _ in range(rng.randint(0, 4))}
        query = urlencode({k: str(v) for k, v in params.items() if v is not None})
        assert urls.url("/voice/gather", **params) == (
            "https://ivr.example.com/voice/gather" + (f"?{query}" if query else "")), params
