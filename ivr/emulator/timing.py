"""How long things take on the emulated network.

Twilio's own timers (a Gather's `timeout`, `<Pause length>`, a Dial's ring `timeout`) are in
seconds, multiplied by `scale` so tests can run them fast. Media has no length we can know
without fetching it, so one `<Play>` lasts `play_seconds` and `<Say>` reads at `say_rate`
characters a second (0: at once).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Durations on the emulated network."""

    scale: float = 1.0  # multiplies Twilio's timers
    play_seconds: float = 4.0  # one <Play> of an audio file, per loop
    say_rate: float = 0.0  # characters per second of <Say>; 0: instant
    ring_seconds: float = 1.0  # default ring before a scripted party answers

    def timer(self, seconds: float) -> float:
        """One of Twilio's timers, scaled."""
        return max(0.0, float(seconds)) * self.scale

    def say(self, text: str) -> float:
        """How long `text` takes to say."""
        return len(text) / self.say_rate if self.say_rate > 0 else 0.0

    def play(self, loops: int = 1) -> float:
        """How long a <Play> with `loop` repetitions lasts (loop 0 means 'forever' to Twilio)."""
        return self.play_seconds * max(1, loops)
