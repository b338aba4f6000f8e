"""Bounded fetches: what the service downloads, from where, how long it waits and how much it reads.

1. A `<Record>` answer is fetched inside the webhook, so only from the Twilio API it is configured
   with (the same scheme, host and port), within one time budget well under Twilio's 15 s, and no
   more than a few MB of it. Anything else ends as no answer: the menu asks again.
2. `ivr speech install` takes https:// URLs or a local zip only, at most `--max-bytes` of it
   (counted while it streams), and with `--sha256` checks the digest before unpacking anything.

Every server here is real: sockets on 127.0.0.1, plain or TLS (a throwaway CA from trustme).
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr import create_app
from ivr.commands.speech import speech_group
from ivr.infra.services import services_of
from speech.live import fallback
from tests.conftest import BASE_URL
from tests.security.fetch_servers import (
    Listener,
    Site,
    Tls,
    endless,
    make_tls,
    wav_of_silence,
)
from tests.speech.live import ACCOUNT_SID, dial, gather_node, webhook
from tests.speech.test_models import make_model_zip

NOT_HEARD = "죄송합니다. 아무 말씀도 듣지 못했습니다."  # the Korean menu's no-input prompt
RECORDING_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE{'7' * 32}"
MODEL = "vosk-model-small-xx-0.1"


# --- real servers (tests/security/fetch_servers.py) -----------------------------------------

@pytest.fixture
def listeners() -> Iterator[Callable[..., Listener]]:
    made: list[Listener] = []

    def make(*, hold: bool = False) -> Listener:
        made.append(Listener(hold=hold))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


@pytest.fixture
def sites() -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def make(routes: dict, tls: ssl.SSLContext | None = None) -> Site:
        made.append(Site(routes, tls))
        return made[-1]

    yield make
    for site in made:
        site.close()


@pytest.fixture
def tls(tmp_path, monkeypatch) -> Tls:
    """A server context; urllib's default context trusts its CA (requests is told by
    REQUESTS_CA_BUNDLE where a test needs it)."""
    made = make_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(made.certificate))
    return made


# --- 1. recordings -------------------------------------------------------------------------

@pytest.fixture
def make_app(app_config: dict) -> Iterator[Callable[[str], object]]:
    """An app whose Twilio API (TWILIO_API_BASE) is the given base."""
    apps = []

    def make(api_base: str):
        apps.append(create_app({**app_config, "TWILIO_API_BASE": api_base}))
        return apps[-1]

    yield make
    for app in apps:
        services_of(app).db.dispose()


def answer_by_recording(app, cloud, recording_url: str) -> tuple[str, float]:
    """A caller at the Korean menu answers by `<Record>`, which Twilio gives as `recording_url`:
    the TwiML that answers, and how long that webhook took."""
    call = dial(app, cloud)
    record = ET.fromstring(webhook(app, call, f"{BASE_URL}/speech/record?flow=korean"
                                              "&node=ko_menu")).find("Record")
    assert record is not None
    started = time.monotonic()
    document = webhook(app, call, record.get("action", ""),
                       {"RecordingUrl": recording_url, "RecordingDuration": "2"})
    return document, time.monotonic() - started


def assert_asked_again(document: str) -> None:
    """The call carried on as with no answer: the menu's no-input prompt, the menu again."""
    assert gather_node(document) == ("korean", "ko_menu")
    assert NOT_HEARD in document


# (TWILIO_API_BASE, RecordingUrl) from the configured listener `api` and another, `elsewhere`.
ELSEWHERE = {
    "another port": lambda api, elsewhere: (api.url(), elsewhere.url() + RECORDING_PATH),
    "userinfo naming the API": lambda api, elsewhere: (
        api.url(), f"http://127.0.0.1:{api.port}@127.0.0.1:{elsewhere.port}{RECORDING_PATH}"),
    "http when https is configured": lambda api, elsewhere: (
        api.url("https"), api.url("http") + RECORDING_PATH),
    "another host name": lambda api, elsewhere: (api.url(), api.url(host="localhost")
                                                 + RECORDING_PATH),
}


@pytest.mark.parametrize("case", ELSEWHERE.values(), ids=ELSEWHERE.keys())
def test_a_recording_is_fetched_from_the_configured_twilio_api_only(
        make_app, twilio_cloud, listeners, caplog, case):
    """Hole: any RecordingUrl was fetched (with the account's credentials when the host name
    matched). Now nothing else is even connected to, and the call goes on as with no answer."""
    api, elsewhere = listeners(), listeners()
    api_base, recording_url = case(api, elsewhere)
    document, _ = answer_by_recording(make_app(api_base), twilio_cloud, recording_url)
    assert (api.connections, elsewhere.connections) == (0, 0)
    assert_asked_again(document)
    refusals = [r.getMessage() for r in caplog.records if "refused to fetch" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].startswith("recorded answer not recognised: refused to fetch the "
                                  "recording http")
    assert f"it is not on the Twilio API ({api_base} or https://api.twilio.com)" in refusals[0]


def test_a_twilio_api_that_never_answers_costs_the_webhook_one_budget(
        make_app, twilio_cloud, listeners, caplog):
    """Hole: 3 tries of 10 s each (31 s) inside a webhook Twilio abandons after 15 s. Now one
    budget covers every try: the caller hears the menu again before Twilio gives up."""
    silent = listeners(hold=True)  # accepts, reads nothing, answers nothing
    document, elapsed = answer_by_recording(make_app(silent.url()), twilio_cloud,
                                            silent.url() + RECORDING_PATH)
    assert silent.connections >= 1  # it was tried
    assert elapsed < 12, f"the webhook took {elapsed:.1f} s"
    assert_asked_again(document)
    assert "could not download the recording" in caplog.text


@pytest.mark.parametrize("declared", [True, False], ids=["with Content-Length",
                                                         "without Content-Length"])
def test_a_huge_recording_is_not_read_past_the_cap(make_app, twilio_cloud, sites, caplog,
                                                   declared):
    """Hole: the whole body was read into memory, however large. Now reading stops at the cap
    (a declared length over it is refused before the body), and the menu asks again."""
    total = 128 << 20

    def huge():
        headers = {"Content-Type": "audio/x-wav"}
        if declared:
            headers["Content-Length"] = str(total)
        return 200, headers, endless(total)

    api = sites({RECORDING_PATH + ".wav": huge})
    document, _ = answer_by_recording(make_app(api.base), twilio_cloud, api.base + RECORDING_PATH)
    assert api.paths == [RECORDING_PATH + ".wav"]
    # What the server got out is what we read plus what the sockets' buffers held.
    assert api.sent < total // 2, f"{api.sent} of {total} bytes sent"
    assert_asked_again(document)
    assert f"larger than the {fallback.MAX_RECORDING_BYTES}" in caplog.text


def test_the_configured_api_is_still_asked(make_app, twilio_cloud, sites, caplog):
    """The control: a recording on the configured API is fetched (and heard as silence)."""
    api = sites({RECORDING_PATH + ".wav": lambda: (200, {}, iter([wav_of_silence()]))})
    document, _ = answer_by_recording(make_app(api.base), twilio_cloud, api.base + RECORDING_PATH)
    assert api.paths == [RECORDING_PATH + ".wav"]
    assert_asked_again(document)
    assert "refused" not in caplog.text and "could not download" not in caplog.text


def test_a_redirect_from_the_api_is_followed_to_https_only(make_app, twilio_cloud, sites,
                                                          listeners, tls, monkeypatch):
    """Twilio may answer a media URL with a redirect: followed to https (there without the
    account's credentials), never to plain http elsewhere."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.certificate))
    media = sites({"/media/RE7.wav": lambda: (200, {}, iter([wav_of_silence()]))}, tls.context)
    plain = listeners()
    api = sites({RECORDING_PATH + ".wav": lambda: (302, {"Location": media.base
                                                         + "/media/RE7.wav"}, iter([])),
                 "/elsewhere.wav": lambda: (302, {"Location": plain.url() + "/RE7.wav"},
                                            iter([]))})
    app = make_app(api.base)
    assert_asked_again(answer_by_recording(app, twilio_cloud, api.base + RECORDING_PATH)[0])
    assert media.paths == ["/media/RE7.wav"] and media.authorizations == [None]
    assert api.authorizations[0] is not None  # the API itself is asked with the credentials
    assert_asked_again(answer_by_recording(app, twilio_cloud, api.base + "/elsewhere.wav")[0])
    assert plain.connections == 0


@pytest.mark.parametrize(("url", "trusted"), [
    ("http://127.0.0.1:8000/_twilio/2010-04-01/Accounts/AC1/Recordings/RE1", True),
    ("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", True),
    ("http://127.0.0.1:8000/admin/agents", False),  # the app itself, beside the emulator
    ("http://127.0.0.1:8000/_twilio/../admin/agents", False),
    ("http://127.0.0.1:8000/_twilio/%2e%2e/admin/agents", False),
    ("http://127.0.0.1:8000/_twilioX/2010-04-01/Recordings/RE1", False),
    ("http://127.0.0.1:8001/_twilio/2010-04-01/Recordings/RE1", False),
    ("http://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", False),
    ("https://api.twilio.com:8443/2010-04-01/Accounts/AC1/Recordings/RE1", False),
    ("https://api.twilio.com@evil.example.com/RE1", False),
    ("https://user@api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", False),
    ("https://api.twilio.com.evil.example.com/RE1", False),
    ("https://evil.example.com\\@api.twilio.com/RE1", False),
    ("https://eu.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", False),
])
def test_what_counts_as_the_twilio_api(make_app, url, trusted):
    """Same scheme, host and port as TWILIO_API_BASE (here `ivr serve`'s emulator, beside the
    app) and under its path, or Twilio's own https://api.twilio.com."""
    app = make_app("http://127.0.0.1:8000/_twilio")
    assert fallback._trusted(app, url) is trusted


# --- 2. model installs ---------------------------------------------------------------------

@pytest.fixture
def cli(monkeypatch, tmp_path) -> CliRunner:
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path / "models"))
    return CliRunner()


def install(cli: CliRunner, *args: str):
    return cli.invoke(speech_group, ["install", *args])


def nothing_installed(tmp_path: Path) -> bool:
    """No model and no partial download in the models directory."""
    models = tmp_path / "models"
    return not models.exists() or list(models.iterdir()) == []


def error_line(result) -> str:
    """The command's one-line reason (click prints `Error: ...`), besides the progress label."""
    lines = [line for line in result.output.strip().splitlines()
             if not line.startswith("Downloading ")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def model_zip(tmp_path) -> Path:
    return make_model_zip(tmp_path / f"{MODEL}.zip", MODEL)


@pytest.mark.parametrize("scheme", ["http", "file", "ftp"])
def test_only_https_urls_or_local_zips_are_installed(cli, sites, tmp_path, model_zip, scheme):
    """Hole: http:// (and file://) URLs were fetched and installed: a model anyone on the way
    could swap. Now they are refused with the reason, before anything is fetched."""
    served = sites({f"/{MODEL}.zip": lambda: (200, {}, iter([model_zip.read_bytes()]))})
    url = {"http": f"{served.base}/{MODEL}.zip", "file": model_zip.as_uri(),
           "ftp": f"ftp://127.0.0.1/{MODEL}.zip"}[scheme]
    result = install(cli, url)
    assert result.exit_code == 1
    reason = error_line(result)
    assert reason.startswith(f"Error: {url}: refused: ")
    if scheme == "file":
        assert f"give the local path ({model_zip})" in reason
    else:
        assert "only https:// URLs or a local zip can be installed" in reason
    assert served.paths == []
    assert nothing_installed(tmp_path)


def test_a_zip_over_max_bytes_is_refused(cli, tmp_path, model_zip):
    """Hole: no limit on what was installed. Now `--max-bytes` (default 3G) caps the zip."""
    size = model_zip.stat().st_size
    result = install(cli, str(model_zip), "--max-bytes", str(size - 1))
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {model_zip}: refused: larger than the limit of {size - 1} bytes (it is {size} "
        "bytes); raise the limit with --max-bytes if it is expected")
    assert nothing_installed(tmp_path)
    ok = install(cli, str(model_zip), "--max-bytes", str(size))
    assert ok.exit_code == 0, ok.output
    assert "--max-bytes SIZE" in install(cli, "--help").output


def test_a_zip_with_another_sha256_is_not_installed(cli, tmp_path, model_zip):
    """Hole: nothing checked what was unpacked. Now `--sha256` is checked first."""
    digest = hashlib.sha256(model_zip.read_bytes()).hexdigest()
    wrong = "0" * 64
    result = install(cli, str(model_zip), "--sha256", wrong)
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {model_zip}: refused: its SHA-256 is {digest}, not the {wrong} expected; "
        "nothing was installed")
    assert nothing_installed(tmp_path)
    bad = install(cli, str(model_zip), "--sha256", "abc")
    assert bad.exit_code == 1 and "expected 64 hexadecimal digits" in error_line(bad)
    ok = install(cli, str(model_zip), "--sha256", digest.upper())
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "models" / MODEL / "am" / "final.mdl").is_file()


# --- 2b. the same over https ---------------------------------------------------------------

@pytest.mark.parametrize("declared", [True, False], ids=["with Content-Length",
                                                         "without Content-Length"])
def test_a_download_is_stopped_at_max_bytes(cli, sites, tls, tmp_path, declared):
    total = 64 << 20

    def huge():
        return 200, {"Content-Length": str(total)} if declared else {}, endless(total)

    site = sites({"/big.zip": huge}, tls.context)
    result = install(cli, f"{site.base}/big.zip", "--max-bytes", "1M")
    assert result.exit_code == 1
    detail = f"it is {total} bytes" if declared else "stopped after"
    assert f"refused: larger than the limit of {1 << 20} bytes ({detail}" in error_line(result)
    assert site.sent < total // 2
    assert nothing_installed(tmp_path)  # the partial download is gone


def test_a_download_with_another_sha256_leaves_nothing(cli, sites, tls, tmp_path, model_zip):
    site = sites({f"/{MODEL}.zip": lambda: (200, {}, iter([model_zip.read_bytes()]))}, tls.context)
    result = install(cli, f"{site.base}/{MODEL}.zip", "--sha256", "f" * 64)
    assert result.exit_code == 1
    assert "refused: its SHA-256 is" in error_line(result)
    assert nothing_installed(tmp_path)


def test_an_https_download_installs_under_its_url_name(cli, sites, tls, tmp_path):
    """A flat zip (no top directory) is named after its URL; the digest matches."""
    flat = make_model_zip(tmp_path / "flat.zip", None)
    site = sites({"/flat-model.zip": lambda: (200, {}, iter([flat.read_bytes()]))}, tls.context)
    digest = hashlib.sha256(flat.read_bytes()).hexdigest()
    result = install(cli, f"{site.base}/flat-model.zip", "--sha256", digest)
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["flat-model"]


def test_a_redirect_to_http_is_refused(cli, sites, tls, tmp_path, model_zip):
    plain = sites({f"/{MODEL}.zip": lambda: (200, {}, iter([model_zip.read_bytes()]))})
    moved = sites({"/m.zip": lambda: (302, {"Location": f"{plain.base}/{MODEL}.zip"},
                                      iter([]))}, tls.context)
    result = install(cli, f"{moved.base}/m.zip")
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: {moved.base}/m.zip: refused: it redirects to {plain.base}/{MODEL}.zip, and "
        "only https:// downloads are allowed")
    assert plain.paths == []
    assert nothing_installed(tmp_path)


def test_an_unreachable_https_url_says_what_to_do(cli, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = install(cli, f"https://127.0.0.1:{port}/m.zip")
    assert result.exit_code == 1
    reason = error_line(result)
    assert reason.startswith(f"Error: could not download https://127.0.0.1:{port}/m.zip: ")
    assert "ivr speech install path/to/model.zip" in reason and "Traceback" not in reason
    assert nothing_installed(tmp_path)
