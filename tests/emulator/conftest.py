"""An emulated Twilio account and a small TwiML app of the test's own (not the product's).

The emulator is checked against Twilio's documentation with documents written here, so what
it does is what Twilio does, not what our service happens to need.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import make_server

from ivr.emulator import EmulatorServer, Timing, TwilioEmulator

ACCOUNT = "AC" + "7" * 32
TOKEN = "emulator-test-token"
NUMBER = "+18005550100"


@dataclass
class TwimlApp:
    """Serves TwiML the test sets per path, and records every request with its form."""

    url: str = ""
    documents: dict[str, Callable[[dict], str] | str] = field(default_factory=dict)
    requests: list[tuple[str, dict]] = field(default_factory=list)
    bad_signatures: int = 0

    def route(self, path: str, document: Callable[[dict], str] | str) -> None:
        self.documents[path] = document

    def got(self, path: str) -> list[dict]:
        """The forms of every request to `path`, in order."""
        return [form for p, form in list(self.requests) if p == path]


def twiml(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


@pytest.fixture
def app_server() -> Iterator[TwimlApp]:
    recorder = TwimlApp()
    flask_app = Flask("twiml-test-app")
    validator = RequestValidator(TOKEN)

    @flask_app.route("/<path:path>", methods=["GET", "POST"])
    def serve(path: str):
        form = request.form.to_dict() if request.method == "POST" else request.args.to_dict()
        signed_over = request.url if request.method == "GET" else request.base_url + (
            "?" + request.query_string.decode() if request.query_string else "")
        if not validator.validate(signed_over, form if request.method == "POST" else {},
                                  request.headers.get("X-Twilio-Signature", "")):
            recorder.bad_signatures += 1
        recorder.requests.append(("/" + path, form))
        document = recorder.documents.get("/" + path)
        if document is None:
            return Response("", status=204 if path == "status" else 404)
        body = document(form) if callable(document) else document
        if isinstance(body, tuple):
            return Response(body[0], status=body[1], mimetype="text/xml")
        return Response(body, mimetype="text/xml")

    server = make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{server.server_port}"
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture
def emulator(app_server: TwimlApp) -> Iterator[TwilioEmulator]:
    cloud = TwilioEmulator(ACCOUNT, TOKEN, timing=Timing(scale=0.05, play_seconds=0.1,
                                                         ring_seconds=0.1))
    with EmulatorServer(cloud):
        cloud.configure_number(NUMBER, app_server.url + "/voice",
                               status_callback=app_server.url + "/status",
                               fallback_url=app_server.url + "/fallback")
        yield cloud
    assert app_server.bad_signatures == 0, "a webhook was not signed as Twilio signs it"


@pytest.fixture
def rest(emulator: TwilioEmulator) -> Client:
    """The real twilio REST client, pointed at the emulator (what TWILIO_API_BASE does)."""
    client = Client(ACCOUNT, TOKEN)
    client.api.base_url = emulator.public_url
    return client
