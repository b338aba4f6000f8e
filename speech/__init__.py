"""Local speech recognition for voice menus: Vosk models, telephone audio, choice matching."""

from speech.errors import (
    AudioError,
    ModelInstallError,
    ModelLoadError,
    ModelNotFound,
    SpeechError,
    StreamMessageError,
)
from speech.install import install_model
from speech.matcher import MatchResult, match_choice
from speech.models import LoadedModel, ModelInfo, find_model, get_model, list_models
from speech.recognizer import Decision, EndpointConfig, SpeechSession, recognize_file

__all__ = [
    "AudioError",
    "Decision",
    "EndpointConfig",
    "LoadedModel",
    "MatchResult",
    "ModelInfo",
    "ModelInstallError",
    "ModelLoadError",
    "ModelNotFound",
    "SpeechError",
    "SpeechSession",
    "StreamMessageError",
    "find_model",
    "get_model",
    "install_model",
    "list_models",
    "match_choice",
    "recognize_file",
]
