"""The far ends of emulated calls: the people (or machines) who answer, listen and press keys.

Twilio's cloud is emulated faithfully; the people are not Twilio's business, so they are
plain behaviours. A `ScriptedParty` answers after a ring, hears every prompt to the end, then
presses its next keys and talks for a while before hanging up: agents, callback customers and
outside numbers in `ivr serve`. An `InteractiveParty` waits for a person (the `ivr simulate`
terminal, or a test) to say what to do next, through the emulator's control API.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

from ivr.emulator.calls import Call, Interrupt, Listen, Reply


@dataclass
class ScriptedParty:
    """A person who follows a script; every call to this party uses the same one."""

    answers: str = "human"
    ring_seconds: float = 1.0
    digits: list[str] = field(default_factory=lambda: ["1"])  # one entry per Gather, last repeats
    talk: float | None = 5.0
    message_seconds: float = 5.0
    _turns: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, call: Call) -> tuple[str, float]:
        return self.answers, self.ring_seconds

    def listen(self, call: Call, listen: Listen) -> Reply | None:
        # Hear the whole prompt (an agent's whisper, say), then answer at once.
        if call.wait(listen.prompt_seconds):
            return None
        with self._lock:
            turn = self._turns.get(call.sid, 0)
            self._turns[call.sid] = turn + 1
        if listen.in_queue or not self.digits:
            call.wait(listen.timeout)
            return None
        keys = self.digits[min(turn, len(self.digits) - 1)]
        if not keys:
            call.wait(listen.timeout)
            return None
        return Reply(digits=keys)

    def record(self, call: Call, max_length: float) -> float:
        return min(max_length, self.message_seconds)

    def talk_seconds(self, call: Call) -> float | None:
        return self.talk


class InteractiveParty:
    """A person at a terminal: each Gather waits for their next action.

    At menus they may take their time (Twilio's time-out is theirs to choose: "wait" is
    silence). In a hold queue the music keeps its own time, and a key is taken when it comes.
    """

    def __init__(self) -> None:
        self.actions: queue.Queue[Reply | str] = queue.Queue()
        self.waiting = threading.Event()  # set while a menu Gather waits for the person

    def act(self, action: Reply | str) -> None:
        """The person's next action: a Reply, "wait" (silence) or "hangup"."""
        self.actions.put(action)

    def answer(self, call: Call) -> tuple[str, float]:
        return "human", 0.0

    def listen(self, call: Call, listen: Listen) -> Reply | None:
        limit = listen.prompt_seconds + listen.timeout if listen.in_queue else None
        if not listen.in_queue:
            self.waiting.set()
        try:
            action = self._next(call, limit)
        finally:
            self.waiting.clear()
        if action == "hangup":
            call.interrupt(Interrupt.HANGUP, by="caller")
            return None
        return action if isinstance(action, Reply) else None

    def _next(self, call: Call, limit: float | None) -> Reply | str | None:
        step = 0.05
        waited = 0.0
        while limit is None or waited < limit:
            try:
                return self.actions.get(timeout=step)
            except queue.Empty:
                waited += step
            if call.pending() is not None:
                return None
        return None

    def record(self, call: Call, max_length: float) -> float:
        action = self._next(call, None)
        if isinstance(action, Reply) and action.digits.isdigit():
            return min(max_length, float(action.digits))
        return 0.0

    def talk_seconds(self, call: Call) -> float | None:
        return None  # until they hang up (an action) or the agent does
