"""Real servers on 127.0.0.1 for the bounded-fetch tests: a bare TCP port that counts
connections, an HTTP(S) site with scripted answers that counts what it got out, and TLS."""

from __future__ import annotations

import io
import socket
import ssl
import threading
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme


class Listener:
    """A TCP port that counts connections and never answers one (`hold`) or closes each."""

    def __init__(self, *, hold: bool) -> None:
        self.hold = hold
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # so that the accepting thread sees `close`
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name="listener")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self.hold:
                self._held.append(conn)
            else:
                conn.close()

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        for conn in self._held:
            conn.close()


class Site:
    """An HTTP(S) server whose paths answer with (status, headers, body chunks); it counts the
    body bytes each answer got out before the client hung up."""

    def __init__(self, routes: dict[str, Callable[[], tuple[int, dict, Iterator[bytes]]]],
                 tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.paths: list[str] = []
        self.authorizations: list[str | None] = []
        self.sent = 0
        site = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: a body without a length ends at close
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                site.paths.append(self.path)
                site.authorizations.append(self.headers.get("Authorization"))
                route = site.routes.get(self.path)
                status, headers, chunks = route() if route else (404, {}, iter([b"missing"]))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    for chunk in chunks:
                        self.wfile.write(chunk)
                        site.sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client stopped reading: what we measure

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def endless(total: int, chunk: bytes = b"\0" * (1 << 16)) -> Iterator[bytes]:
    """`total` bytes, a chunk at a time."""
    for _ in range(total // len(chunk)):
        yield chunk


def wav_of_silence(seconds: float = 1.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))
    return out.getvalue()


@dataclass
class Tls:
    context: ssl.SSLContext  # for a server
    certificate: Path  # for a client to trust


def make_tls(where: Path) -> Tls:
    """A server context with a certificate for 127.0.0.1 and localhost, from a throwaway CA
    (trustme), and that CA's certificate for clients to trust."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    trusted = where / "ca.pem"
    ca.cert_pem.write_to_path(str(trusted))
    return Tls(context, trusted)
