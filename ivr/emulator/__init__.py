"""A local emulator of Twilio's cloud, following Twilio's documentation, not our code.

It runs calls (TwiML, queues, bridges, status callbacks) for `ivr serve` on a laptop and for
the test suite. Only the composition root (`ivr serve`, `ivr simulate`) and tests use it; the
service itself talks to it through the real twilio REST client and its signed webhooks.
"""

from ivr.emulator.calls import Reply
from ivr.emulator.chaos import Chaos, ChaosSettings
from ivr.emulator.cloud import ApiError, TwilioEmulator
from ivr.emulator.parties import InteractiveParty, ScriptedParty
from ivr.emulator.rest import create_emulator_app
from ivr.emulator.server import EmulatorServer
from ivr.emulator.timing import Timing

__all__ = [
    "ApiError",
    "Chaos",
    "ChaosSettings",
    "EmulatorServer",
    "InteractiveParty",
    "Reply",
    "ScriptedParty",
    "Timing",
    "TwilioEmulator",
    "create_emulator_app",
]
