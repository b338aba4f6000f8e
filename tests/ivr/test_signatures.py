"""Twilio signatures: published vectors, forged/altered/unsigned requests, proxies."""

from __future__ import annotations

import pytest
from flask import Flask, request
from twilio.request_validator import RequestValidator
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr.infra.security import is_valid_signature, public_url
from tests.conftest import AUTH_TOKEN, BASE_URL, sign

VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_published_vector_from_twilio_python():
    # twilio-python tests/unit/test_request_validator.py
    validator = RequestValidator("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert validator.compute_signature(url, VECTOR_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert validator.validate(url, VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_published_vector_from_twilio_docs():
    params = dict(VECTOR_PARAMS, Caller="+12349013030", From="+12349013030")
    validator = RequestValidator("12345")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert validator.compute_signature(url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def _vector_app(base_url=None, hops=0) -> Flask:
    app = Flask(__name__)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=hops, x_host=hops, x_port=hops)

    @app.post("/myapp.php")
    def view():
        ok = is_valid_signature(request, "12345", base_url)
        return ("ok", 200) if ok else ("forbidden", 403)

    return app


def test_published_vector_through_a_flask_request():
    client = _vector_app("https://mycompany.com").test_client()
    resp = client.post("/myapp.php?foo=1&bar=2", data=VECTOR_PARAMS,
                       headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="})
    assert resp.status_code == 200


def test_url_is_rebuilt_behind_a_tls_proxy():
    """Behind a proxy the app sees http://internal:8000; Twilio signed https://public."""
    client = _vector_app(hops=1).test_client()
    headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
               "X-Forwarded-Proto": "https", "X-Forwarded-Host": "mycompany.com"}
    ok = client.post("/myapp.php?foo=1&bar=2", data=VECTOR_PARAMS, headers=headers,
                     base_url="http://10.0.0.5:8000")
    assert ok.status_code == 200
    # Without the forwarded headers the URL differs from what was signed.
    bare = client.post("/myapp.php?foo=1&bar=2", data=VECTOR_PARAMS,
                       headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
                       base_url="http://10.0.0.5:8000")
    assert bare.status_code == 403


def test_public_url_keeps_the_query_string_as_sent():
    app = Flask(__name__)
    with app.test_request_context("/voice/gather?flow=main&node=a%20b", base_url="http://x"):
        assert public_url(request, "https://ivr.example.com/") == (
            "https://ivr.example.com/voice/gather?flow=main&node=a%20b")


FORM = {"CallSid": "CA" + "a" * 32, "From": "+14155550123", "To": "+18005550100",
        "AccountSid": "AC" + "1" * 32, "CallStatus": "ringing"}


@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/status", "/voice/fallback",
                                  "/voice/gather?flow=main&node=main_menu",
                                  "/voice/continue?flow=main&node=welcome"])
def test_signed_webhooks_are_accepted(twilio_post, path):
    assert twilio_post(path, FORM).status_code in (200, 204)


@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/status", "/voice/fallback",
                                  "/voice/gather?flow=main&node=main_menu",
                                  "/voice/dialed?flow=main&node=x", "/voice/recorded",
                                  "/voice/queue/wait?queue=support"])
def test_unsigned_requests_get_403(client, path):
    assert client.post(path, data=FORM).status_code == 403


def test_forged_signature_gets_403(client):
    forged = sign(BASE_URL + "/voice/incoming", FORM, token="not-our-token")
    resp = client.post("/voice/incoming", data=FORM, headers={"X-Twilio-Signature": forged})
    assert resp.status_code == 403


def test_altered_parameters_get_403(client):
    signature = sign(BASE_URL + "/voice/incoming", FORM)
    altered = dict(FORM, From="+19005550199")
    resp = client.post("/voice/incoming", data=altered, headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 403


def test_altered_url_gets_403(client):
    url = "/voice/gather?flow=main&node=main_menu"
    signature = sign(BASE_URL + url, dict(FORM, Digits="1"))
    resp = client.post("/voice/gather?flow=main&node=billing_menu", data=dict(FORM, Digits="1"),
                       headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 403


def test_signature_for_another_host_gets_403(client):
    signature = sign("https://evil.example.com/voice/incoming", FORM, AUTH_TOKEN)
    resp = client.post("/voice/incoming", data=FORM, headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 403


# Each base the service may be configured with, and each form of it Twilio may have signed:
# with the scheme's port, without it, or another host or port (which must fail).
BASES = ["https://ivr.example.com", "https://ivr.example.com:443", "http://127.0.0.1:8080",
         "http://ivr.example.com"]
SIGNED_AS = ["https://ivr.example.com", "https://ivr.example.com:443", "http://127.0.0.1:8080",
             "http://127.0.0.1", "http://127.0.0.1:80", "http://ivr.example.com",
             "http://ivr.example.com:80", "https://ivr.example.com:8443",
             "https://other.example.com"]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("signed_as", SIGNED_AS)
def test_a_signature_is_taken_exactly_when_twilios_validator_takes_it(base, signed_as):
    """The check computes the URL's other port form only when the first does not match;
    what it accepts must stay what `RequestValidator.validate` (which computes both) accepts.
    The table has both outcomes: each base matches some signed forms and not others."""
    app = Flask(__name__)
    path = "/voice/gather?flow=main&node=main_menu&t=3"
    form = dict(FORM, Digits="1")
    signature = sign(signed_as + path, form)
    with app.test_request_context(path, method="POST", data=form, base_url="http://internal",
                                  headers={"X-Twilio-Signature": signature}):
        ours = is_valid_signature(request, AUTH_TOKEN, base)
    assert ours == RequestValidator(AUTH_TOKEN).validate(base + path, form, signature)


def test_the_table_above_holds_both_outcomes():
    validator = RequestValidator(AUTH_TOKEN)
    path, form = "/voice/incoming", dict(FORM)
    outcomes = {validator.validate(b + path, form, sign(s + path, form))
                for b in BASES for s in SIGNED_AS}
    assert outcomes == {True, False}
