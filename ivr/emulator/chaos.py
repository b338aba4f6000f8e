"""Twilio's delivery at its worst, seeded so that a run that fails can be run again.

Twilio's documentation says status callbacks may arrive late, more than once and out of
order, and that a webhook may be requested again. With chaos on, the emulator does all of it:
- each status callback waits a random time up to `delay` seconds, so later ones overtake it;
- a share `repeat` of status callbacks and of call webhooks is sent a second time, later (the
  call carries on with the first answer, as Twilio's does);
- a share `drop` of final status callbacks never arrives at all;
- a share `rest` of REST API requests never gets its answer: the connection drops, half the
  time before Twilio acted on the request and half the time after, so the client cannot tell
  whether a call was placed, redirected or ended (what a time-out looks like from outside).
Every choice comes from one `random.Random(seed)`: the same seed and the same calls make the
same choices.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

FINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class ChaosSettings:
    seed: int = 0
    delay: float = 0.5  # seconds a status callback may wait
    repeat: float = 0.2  # share of webhooks and status callbacks sent twice
    drop: float = 0.0  # share of final status callbacks lost
    rest: float = 0.0  # share of REST requests whose answer is lost (a time-out)

    @classmethod
    def parse(cls, text: str) -> ChaosSettings:
        """'seed=7,delay=0.5,repeat=0.2,drop=0.05,rest=0.1' (any subset; a bare number is the
        seed)."""
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                key, value = "seed", key
            if key not in ("seed", "delay", "repeat", "drop", "rest"):
                raise ValueError(f"unknown chaos setting {key!r}: use seed, delay, repeat, "
                                 "drop, rest")
            values[key] = float(value)
        settings = cls(seed=int(values.pop("seed", 0)), **values)
        shares = (settings.repeat, settings.drop, settings.rest)
        if not (all(0 <= share <= 1 for share in shares) and settings.delay >= 0):
            raise ValueError("chaos: repeat, drop and rest are shares (0 to 1), delay is seconds")
        return settings


class Chaos:
    """The seeded choices; thread-safe (calls run in threads of their own)."""

    def __init__(self, settings: ChaosSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._lock = threading.Lock()
        self.repeated = 0
        self.dropped = 0
        self.rest_lost = 0

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def counts(self) -> dict[str, int]:
        """What chaos did so far."""
        with self._lock:
            return {"repeated": self.repeated, "dropped": self.dropped,
                    "rest_lost": self.rest_lost}

    def _draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def status_delays(self, params: dict) -> list[float]:
        """When to send a status callback: no time (dropped), once, or twice."""
        if params.get("CallStatus") in FINAL and self._draw() < self.settings.drop:
            self._count("dropped")
            return []
        first = self._draw() * self.settings.delay
        if self._draw() < self.settings.repeat:
            self._count("repeated")
            return [first, first + self._draw() * self.settings.delay + 0.01]
        return [first]

    def repeat_after(self) -> float | None:
        """For a call webhook: how long after the first to send it again, or None."""
        if self._draw() < self.settings.repeat:
            self._count("repeated")
            return self._draw() * max(self.settings.delay, 0.05)
        return None

    def rest_fate(self) -> str | None:
        """For a REST request: None (answered), or when its answer is lost: "before" Twilio
        acted on it, or "after"."""
        if self.settings.rest <= 0 or self._draw() >= self.settings.rest:
            return None
        self._count("rest_lost")
        return "before" if self._draw() < 0.5 else "after"
