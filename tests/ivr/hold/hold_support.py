"""Test support for the hold queue: a settable clock, signed wait-URL requests, and a stand-in
for Twilio's queues that bridges an agent's <Dial><Queue> to the longest-waiting caller."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from twilio.request_validator import RequestValidator

from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.support.caller import SimulatedCall, Turn

# Tuesday 24 November 2026, 11:00 in New York: the sample shop is open.
SHOP_OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
_QUEUE = re.compile(r'<Queue[^>]*url="(?P<url>[^"]+)"[^>]*>(?P<name>[^<]+)</Queue>')


class Clock:
    """A settable aware-UTC clock (the app's CLOCK)."""

    def __init__(self, at: dt.datetime = SHOP_OPEN) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


def signed_post(client, url: str, form: dict):
    """POST `form` to the absolute `url` (under BASE_URL), signed as Twilio signs it."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return client.post(url[len(BASE_URL):], data=form,
                       headers={"X-Twilio-Signature": signature})


@dataclass
class Holding:
    """A simulated caller in one of Twilio's queues."""

    call: SimulatedCall
    queue: str
    joined: dt.datetime
    bridged_to: str = ""  # the agent call SID that dequeued them


@dataclass
class TwilioQueues:
    """What Twilio's queues do for us: wait-URL requests, <Leave>, hang-ups and bridges."""

    client: object
    clock: Clock
    waiting: dict[str, list[Holding]] = field(default_factory=dict)
    bridges: dict[str, Holding] = field(default_factory=dict)

    def enqueue(self, call: SimulatedCall) -> Holding:
        """The call's TwiML reached <Enqueue>: it joins the queue."""
        assert call.turn is not None and call.turn.waiting == "queue", call.turn
        holding = Holding(call, call.turn.queue, self.clock())
        self.waiting.setdefault(holding.queue, []).append(holding)
        return holding

    def queue_time(self, holding: Holding) -> int:
        return int((self.clock() - holding.joined).total_seconds())

    def wait_hit(self, holding: Holding) -> Turn:
        """Twilio requests the wait URL for this caller; returns what they hear."""
        line = self.waiting.get(holding.queue, [])
        position = line.index(holding) + 1 if holding in line else 0
        form = {**holding.call.params, "QueuePosition": str(position),
                "QueueTime": str(self.queue_time(holding)), "AvgQueueTime": "0",
                "CurrentQueueSize": str(len(line)), "QueueSid": "QU" + "0" * 32}
        resp = signed_post(self.client, f"{BASE_URL}/voice/queue/wait?queue={holding.queue}",
                           form)
        assert resp.status_code == 200, resp.status_code
        turn = Turn(documents=[resp.get_data(as_text=True)])
        turn.said = re.findall(r"<Say[^>]*>([^<]*)</Say>", turn.documents[0])
        turn.played = re.findall(r"<Play[^>]*>([^<]*)</Play>", turn.documents[0])
        return turn

    def press(self, holding: Holding, digits: str) -> str:
        """The caller presses a key during the wait music; returns the TwiML."""
        form = {**holding.call.params, "Digits": digits}
        resp = signed_post(self.client, f"{BASE_URL}/voice/hold/key?queue={holding.queue}",
                           form)
        assert resp.status_code == 200
        return resp.get_data(as_text=True)

    def leave(self, holding: Holding, result: str) -> Turn:
        """The caller leaves the queue (hangup, leave...): Twilio requests the <Enqueue>
        action; the simulated call then follows its TwiML."""
        line = self.waiting.get(holding.queue, [])
        if holding in line:
            line.remove(holding)
        url = f"{BASE_URL}/voice/queue/left?queue={holding.queue}"
        form = {"QueueResult": result, "QueueTime": str(self.queue_time(holding)),
                "QueueSid": "QU" + "0" * 32}
        call = holding.call
        call.turn = None
        return call._fetch(url, form)  # the simulator follows TwiML exactly as for a call

    def deliver(self, inner):
        """Wrap the stand-in's webhook delivery: bridge <Dial><Queue> like Twilio does."""

        def deliver(url: str, params: dict, headers: dict) -> tuple[int, str]:
            if "/voice/hold/agent/dialed" in url and params["CallSid"] in self.bridges:
                # The conversation is over: the caller's <Enqueue> action comes first.
                self._bridged_end(self.bridges[params["CallSid"]])
            status, body = inner(url, params, headers)
            match = _QUEUE.search(body)
            if match and self.waiting.get(match["name"]):
                self._bridge(match["name"], match["url"].replace("&amp;", "&"),
                             params["CallSid"])
            return status, body

        return deliver

    def _bridge(self, queue: str, url: str, agent_sid: str) -> None:
        holding = self.waiting[queue].pop(0)
        holding.bridged_to = agent_sid
        self.bridges[agent_sid] = holding
        form = {**holding.call.params, "QueueSid": "QU" + "0" * 32,
                "QueueTime": str(self.queue_time(holding)), "DequeingCallSid": agent_sid}
        assert signed_post(self.client, url, form).status_code == 200

    def _bridged_end(self, holding: Holding) -> None:
        url = f"{BASE_URL}/voice/queue/left?queue={holding.queue}"
        form = {**holding.call.params, "QueueResult": "bridged",
                "QueueTime": str(self.queue_time(holding)), "QueueSid": "QU" + "0" * 32}
        assert signed_post(self.client, url, form).status_code == 200
