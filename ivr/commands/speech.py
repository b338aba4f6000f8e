"""`ivr speech ...`: list and install Vosk models, recognise an audio file."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from speech.errors import SpeechError
from speech.install import MAX_MODEL_BYTES, install_model
from speech.models import list_models, models_dir
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
def models_command() -> None:
    """List the Vosk models this service can use."""
    found = list_models()
    if not found:
        click.echo(f"No speech models found (looked in installed packages and {models_dir()}).")
        click.echo("Install one with: ivr speech install vosk-model-small-en-us-0.15")
        return
    for m in found:
        click.echo(f"{m.name:<36} {m.language or '?':<4} {m.sample_rate:>6} Hz  "
                   f"{m.source:<9} {m.path}")


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
