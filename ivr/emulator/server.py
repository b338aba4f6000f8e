"""Serve an emulator on its own port, in a background thread (tests, `ivr simulate`)."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, make_server

from ivr.emulator.cloud import TwilioEmulator
from ivr.emulator.rest import create_emulator_app


class EmulatorServer:
    """`with EmulatorServer(emulator) as server: server.url` is where its REST API answers."""

    def __init__(self, emulator: TwilioEmulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self._server: BaseWSGIServer = make_server(host, port, create_emulator_app(emulator),
                                                   threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="twilio-emulator")
        emulator.public_url = self.url

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.emulator.hang_up_all()
        self.emulator.wait_idle(timeout=10)
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
