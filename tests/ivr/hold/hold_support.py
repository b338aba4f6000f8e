"""Test support for the hold queue: a settable clock, and callers driven through the project's
Twilio emulator (`ivr.emulator`, by way of `tests.support.twilio_cloud`).

A `Caller` is a person on the phone: the emulator's interactive far end of a call to the main
line. They press keys or stay silent at menus, hold in Twilio's queue (the emulator requests the
wait URL again each time its document ends, as Twilio does), and hang up. What they heard and
what the network did are read from the emulator's journal. Agents are rung by the service
through the REST API and bridged by the emulator's `<Dial><Queue>`.

Time: the service reads a caller's wait from Twilio's QueueTime, and the emulator's queues keep
real time. `Network.pass_time` moves both clocks together: the service's (the app's CLOCK) and
the emulator's queues (everyone waiting in them joined that much earlier).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from ivr.emulator.calls import Call
from ivr.infra import paths
from tests.support.deliveries import Deliver
from tests.support.twilio_cloud import CallScript, PlacedCall, TwilioCloud

# Tuesday 24 November 2026, 11:00 in New York: the sample shop is open.
SHOP_OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
DEADLINE = 10.0  # seconds any condition may take to come true
# Agents who pick up talk until someone hangs up (an hour at most, on Twilio's clock).
TALKATIVE = CallScript(talk_seconds=3600)


class Clock:
    """A settable aware-UTC clock (the app's CLOCK)."""

    def __init__(self, at: dt.datetime = SHOP_OPEN) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


def until(check: Callable[[], Any], what: str, seconds: float = DEADLINE) -> Any:
    """Poll `check` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.01)


@dataclass(frozen=True)
class Exchange:
    """One webhook on the wire and the app's answer."""

    path: str
    params: dict[str, str]
    status: int
    body: str


class Wire:
    """The network between the emulator and the app: it keeps every webhook and its answer,
    and loses the requests to the paths in `lost` (they never arrive: a connection failure)."""

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.lost: set[str] = set()
        self._sent: list[Exchange] = []
        self._lock = threading.Lock()

    def __call__(self, method: str, url: str, params: dict, headers: dict) -> tuple[int, str]:
        path = urlsplit(url).path
        if path in self.lost:
            raise requests.ConnectionError(f"lost on the way to {url}")
        status, body = self.deliver(method, url, params, headers)
        with self._lock:
            self._sent.append(Exchange(path, dict(params), status, body))
        return status, body

    def answers(self, sid: str, path: str) -> list[Exchange]:
        """What the app answered to `path` for the call `sid`, in order."""
        with self._lock:
            return [x for x in self._sent if x.path == path and x.params.get("CallSid") == sid]


@dataclass
class Turn:
    """What the caller heard since their last action, and what the call does now."""

    said: list[str] = field(default_factory=list)
    waiting: str = ""  # "gather" (a menu listens), "queue" (holding), "hangup" (ended)
    queue: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.said)


@dataclass
class Heard:
    """One wait-URL document as the holding caller heard it."""

    said: list[str]
    played: list[str]
    seq: int  # the journal entry where it ended (the wait music's Gather)


class Caller:
    """A person calling in: the emulator's interactive far end of `call`."""

    def __init__(self, network: Network, call: Call, mark: int) -> None:
        self.network, self.call, self.mark = network, call, mark

    @property
    def sid(self) -> str:
        return self.call.sid

    def events(self, after: int = 0) -> list[dict]:
        """The journal entries of this call after `after`."""
        return self.network.journal.since(after, call=self.sid)

    def turn(self) -> Turn:
        """Wait for the call to stop at a menu, join a queue or end, since the last action."""

        def stopped() -> list[dict] | None:
            found = self.events(self.mark)
            for i, event in enumerate(found):
                menu = event["kind"] == "gather" and not event["detail"]["in_queue"]
                if menu or event["kind"] in ("enqueued", "ended"):
                    return found[: i + 1]
            return None

        found = until(stopped, f"call {self.sid} to reach a menu, a queue or its end")
        last = found[-1]
        return Turn(said=[e["text"] for e in found if e["kind"] == "say"],
                    waiting={"gather": "gather", "enqueued": "queue"}.get(last["kind"], "hangup"),
                    queue=last["text"] if last["kind"] == "enqueued" else "")

    def do(self, action: str) -> Turn:
        """Press keys ('2'), stay silent ('wait') or hang up ('hangup'); return the next turn."""
        self.mark = self.network.journal.last
        self.network.cloud.emulator.act(self.sid, action)
        return self.turn()

    def hold_key(self, digits: str) -> Turn:
        """Press keys while holding (taken during the wait music): what they heard until the
        call was back at the wait URL ("queue") or out of the queue ("left")."""
        self.mark = self.network.journal.last
        self.network.cloud.emulator.act(self.sid, digits)
        key_url, wait_url = self.network.url(paths.HOLD_KEY), self.network.url(paths.QUEUE_WAIT)

        def answered() -> list[dict] | None:
            found = self.events(self.mark)
            key = next((i for i, e in enumerate(found)
                        if e["kind"] == "webhook" and e["text"].startswith(key_url)), None)
            for i, event in enumerate(found[key + 1:] if key is not None else []):
                back = event["kind"] == "webhook" and event["text"].startswith(wait_url)
                if back or event["kind"] in ("left-queue", "ended"):
                    return found[key + 1: key + 2 + i]
            return None

        found = until(answered, f"{self.sid}'s key {digits} to be answered")
        return Turn(said=[e["text"] for e in found if e["kind"] == "say"],
                    waiting="queue" if found[-1]["kind"] == "webhook" else "left")

    def hang_up(self) -> Turn:
        """Hang up; return what they heard after that (once the call has ended)."""
        turn = self.do("hangup")
        self.network.settle(self)
        return turn

    def announcement(self, after: int | None = None) -> Heard:
        """The first wait-URL document with words in it after journal entry `after` (the last
        action when not given), once the caller has heard it."""
        start = self.mark if after is None else after
        wait_url = self.network.url(paths.QUEUE_WAIT)

        def heard() -> Heard | None:
            said: list[str] | None = None
            played: list[str] = []
            for event in self.events(start):
                kind = event["kind"]
                if kind == "webhook":
                    said, played = ([], []) if event["text"].startswith(wait_url) else (None, [])
                elif said is not None and kind in ("say", "play"):
                    (said if kind == "say" else played).append(event["text"])
                elif said and kind == "gather":
                    return Heard(said, played, event["seq"])
            return None

        return until(heard, f"an announcement to {self.sid}")

    def still_holding(self, after: int) -> bool:
        """True when the wait URL was requested again after `after` and the call never left
        the queue meanwhile."""
        wait_url = self.network.url(paths.QUEUE_WAIT)
        until(lambda: any(e["kind"] == "webhook" and e["text"].startswith(wait_url)
                          for e in self.events(after)), f"the wait URL again for {self.sid}")
        return not any(e["kind"] in ("left-queue", "ended") for e in self.events(after))

    def left_queue(self) -> str:
        """How the call left the queue (Twilio's QueueResult), once it has."""
        found = until(lambda: [e for e in self.events() if e["kind"] == "left-queue"],
                      f"{self.sid} to leave the queue")
        return found[-1]["detail"]["result"]

    @property
    def queue_time(self) -> int:
        """The seconds Twilio says the call spent in its queue (once it left it)."""
        return self.call.queue_time


class Network:
    """The emulated phone network the tests drive, wired to the app."""

    def __init__(self, cloud: TwilioCloud, clock: Clock, wire: Wire, base_url: str) -> None:
        self.cloud, self.clock, self.wire, self.base_url = cloud, clock, wire, base_url

    @property
    def journal(self):
        return self.cloud.emulator.journal

    def url(self, path: str) -> str:
        return self.base_url + path

    def dial(self, caller: str, number: str) -> Caller:
        """`caller` calls `number`: Twilio requests its voice URL."""
        mark = self.journal.last
        return Caller(self, self.cloud.emulator.dial_in(caller, number), mark)

    def pass_time(self, seconds: float) -> None:
        """`seconds` pass for the service and for Twilio's queues alike."""
        self.clock.advance(seconds)
        bridging = self.cloud.emulator.bridging
        with bridging.lock:
            for queue in bridging.queues.values():
                for member in queue.members:
                    member.enqueued_at -= seconds

    def answer(self, placed: PlacedCall, talk: float) -> None:
        """The agent picks up and takes a caller; `talk` seconds pass for everyone while they
        are bridged, then the agent hangs up; returns once their call and callbacks are done."""
        driving = threading.Thread(target=self.cloud.drive, args=(placed,), daemon=True)
        driving.start()
        until(lambda: any(e["kind"] == "bridged" for e in self.journal.since(0, call=placed.sid)),
              f"agent call {placed.sid} to be bridged")
        self.pass_time(talk)
        self.cloud.emulator.act(placed.sid, "hangup")
        driving.join(DEADLINE)
        assert not driving.is_alive(), f"agent call {placed.sid} did not end"

    def bridged_to(self, caller: Caller) -> str:
        """The SID of the agent call whose <Dial><Queue> took `caller` ("" if none did)."""
        for event in self.journal.since(0):
            if event["kind"] == "dequeued" and event["detail"]["caller"] == caller.sid:
                return event["call"]
        return ""

    def settle(self, *callers: Caller) -> None:
        """Wait until these calls have ended and every status callback was delivered."""
        for caller in callers:
            until(lambda c=caller: c.call.status.is_final, f"{caller.sid} to end")
            # As `TwilioCloud.drive` does: the call's thread, then the status callbacks.
            self.cloud._wait_done(caller.sid, DEADLINE)
