"""Errors raised by speech recognition, under their own root: recognition knows nothing of the
IVR (the IVR's code catches `SpeechError` where it uses recognition)."""


class SpeechError(Exception):
    """Root of every speech-recognition error."""


class AudioError(SpeechError):
    """Audio could not be read or decoded (corrupt file, unsupported format, empty payload)."""


class ModelNotFound(SpeechError):
    """No Vosk model could be found where the configuration said to look."""


class ModelLoadError(SpeechError):
    """A directory was found but Vosk could not load it as a model."""


class ModelInstallError(SpeechError):
    """A model could not be downloaded, unpacked or installed."""


class StreamMessageError(SpeechError):
    """A Media Streams websocket message was malformed, out of order, or for another stream."""
