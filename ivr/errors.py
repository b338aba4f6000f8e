"""Error types for the IVR service, all under one root."""


class IvrError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(IvrError):
    """The service is configured in a way it cannot run with."""


class FlowError(IvrError):
    """A flows file could not be loaded; `problems` holds each located message."""

    def __init__(self, problems: list) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems) or "invalid flows file")


class SignatureError(IvrError):
    """A webhook did not carry a valid Twilio signature."""


class StateUnavailable(IvrError):
    """Call state could not be read or written (Redis down or slow)."""


class TelephonyError(IvrError):
    """The telephony provider refused or failed to place or change a call.

    `transient` is True when the provider could not be reached or failed on its side (a
    network error, a lost answer, a 5xx): trying again soon may work, and nobody's request is
    at fault. A refusal (4xx: a number it will not call, a bad parameter) is not transient.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class TelephonyUnsure(TelephonyError):
    """The provider's answer was lost and could not be checked: the call may have been placed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)
