"""Queues and bridges: `<Enqueue>`, `<Leave>`, `<Dial>` with `<Number>`, `<Client>`, `<Sip>` or
`<Queue>`, as Twilio documents them.

- `<Enqueue waitUrl>` requests the wait URL at once (QueuePosition, QueueTime, AvgQueueTime,
  CurrentQueueSize, QueueSid) and again each time its document ends.
- The caller leaves the queue by `<Leave>` (QueueResult=leave), by hanging up (hangup), by a
  REST redirect (redirected), by the Queue Members API (redirected) or by being dequeued.
- `<Dial><Queue>` takes the longest-waiting caller; the queue's `url` document plays to that
  caller; then the two are bridged. The Enqueue action (QueueResult=bridged) is requested when
  the bridge ends; the Dial action gets DialCallStatus and the Dequeued* parameters.
- `<Dial><Number>` rings a new leg; its `url` document plays to the callee before the bridge;
  the Dial action gets DialCallStatus, DialCallSid and DialCallDuration.
- Whoever hangs up ends the bridge: the other leg goes on with its action's TwiML.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urljoin

from ivr.emulator.calls import Call, Interrupt, Status, new_sid, rfc2822
from ivr.emulator.network import END, FAILED, LEAVE, End, Goto, Network

DEFAULT_MAX_SIZE = 1000
DIAL_TIMEOUT = 30


@dataclass
class Member:
    """A call waiting in a queue."""

    call: Call
    enqueued_at: float = field(default_factory=time.time)
    left_at: float | None = None  # taken out of the queue (dequeued, left or hung up)

    @property
    def wait_seconds(self) -> int:
        """Time in the queue: up to now, or up to leaving it (never the conversation)."""
        return int((self.left_at or time.time()) - self.enqueued_at)


@dataclass
class Queue:
    """A named Twilio queue."""

    name: str
    account_sid: str
    sid: str = field(default_factory=lambda: new_sid("QU"))
    max_size: int = DEFAULT_MAX_SIZE
    created_at: float = field(default_factory=time.time)
    members: list[Member] = field(default_factory=list)

    def position(self, call: Call) -> int:
        """1-based position of `call` (0 when not a member)."""
        for i, member in enumerate(self.members):
            if member.call is call:
                return i + 1
        return 0

    @property
    def average_wait(self) -> int:
        """Average wait of the callers in the queue now (what Twilio calls AvgQueueTime)."""
        if not self.members:
            return 0
        return int(sum(m.wait_seconds for m in self.members) / len(self.members))

    def resource(self, api_prefix: str) -> dict:
        uri = f"{api_prefix}/Accounts/{self.account_sid}/Queues/{self.sid}.json"
        return {"sid": self.sid, "account_sid": self.account_sid, "friendly_name": self.name,
                "current_size": len(self.members), "max_size": self.max_size,
                "average_wait_time": self.average_wait, "uri": uri,
                "date_created": rfc2822(self.created_at),
                "date_updated": rfc2822(time.time())}

    def member_resource(self, member: Member, api_prefix: str) -> dict:
        uri = (f"{api_prefix}/Accounts/{self.account_sid}/Queues/{self.sid}/Members/"
               f"{member.call.sid}.json")
        return {"call_sid": member.call.sid, "queue_sid": self.sid,
                "date_enqueued": rfc2822(member.enqueued_at), "position": self.position(
                    member.call), "wait_time": member.wait_seconds, "uri": uri}


class Bridge:
    """Two legs talking; it ends when either side hangs up (or its talk time is over)."""

    def __init__(self, cloud: Network, a: Call, b: Call) -> None:
        self.cloud, self.a, self.b = cloud, a, b
        self.ready = threading.Event()  # set when the second leg may talk
        self.ended = threading.Event()
        self.started_at = 0.0
        self.ended_by: str | None = None
        self._lock = threading.Lock()

    def other(self, call: Call) -> Call:
        return self.b if call is self.a else self.a

    def talk(self, call: Call) -> str:
        """This leg's side of the conversation; returns 'self' when this leg ended it (hung up
        or was redirected), 'other' when the other leg did."""
        with self._lock:
            if not self.started_at:
                self.started_at = time.time()
                self.cloud.journal.add(self.a, "bridged", "", with_call=self.b.sid,
                                       to=self.b.to)
        talk = call.party.talk_seconds(call)
        deadline = None if talk is None else time.monotonic() + self.cloud.timing.timer(talk)
        while not self.ended.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                call.interrupt(Interrupt.HANGUP, by="party")
            elif not call.wait(left):
                continue
            pending = call.pending()
            if pending is None:
                continue
            kind = pending[0]
            if kind is Interrupt.BRIDGE_ENDED:
                call.take()
                return "other"
            if kind in (Interrupt.HANGUP, Interrupt.REDIRECT):
                self.end(call)
                return "self"
            call.take()  # a dequeue or leave that no longer applies
        call.take(Interrupt.BRIDGE_ENDED)
        return "other"

    def end(self, by: Call) -> None:
        with self._lock:
            if self.ended.is_set():
                return
            self.ended_by = by.sid
            self.ended.set()
        self.cloud.journal.add(by, "unbridged", "", with_call=self.other(by).sid)
        self.other(by).interrupt(Interrupt.BRIDGE_ENDED)

    @property
    def seconds(self) -> int:
        return int(time.time() - self.started_at) if self.started_at else 0


class Bridging:
    """The queues of one account, and the verbs that join calls together."""

    def __init__(self, cloud: Network) -> None:
        self.cloud = cloud
        self.queues: dict[str, Queue] = {}
        self.lock = threading.Condition()

    def queue(self, name: str, *, create: bool = True) -> Queue | None:
        with self.lock:
            found = self.queues.get(name)
            if found is None and create:
                found = self.queues[name] = Queue(name, self.cloud.account_sid)
            return found

    def queue_by_sid(self, sid: str) -> Queue | None:
        with self.lock:
            return next((q for q in self.queues.values() if q.sid == sid), None)

    # --- <Enqueue> ----------------------------------------------------------------------------

    def enqueue(self, call: Call, verb: ET.Element, url: str) -> Goto | End | None:
        name = (verb.text or "").strip()
        queue = self.queue(name)
        wait_url = urljoin(url, verb.get("waitUrl")) if verb.get("waitUrl") else ""
        wait_method = (verb.get("waitUrlMethod") or "POST").upper()
        action = urljoin(url, verb.get("action")) if verb.get("action") else ""
        with self.lock:
            full = len(queue.members) >= queue.max_size
            member = None if full else Member(call)
            if member is not None:
                queue.members.append(member)
                self.lock.notify_all()
        if member is None:
            result, bridge = "queue-full", None
        else:
            self.cloud.journal.add(call, "enqueued", name, queue_sid=queue.sid)
            try:
                result, bridge = self._hold(call, queue, member, wait_url, wait_method)
            finally:  # whatever happened, the caller is no longer waiting in it
                self._remove(queue, member)
                member.left_at = member.left_at or time.time()
            call.queue_time = member.wait_seconds
        self.cloud.journal.add(call, "left-queue", name, result=result)
        if bridge is not None:
            try:
                if bridge.talk(call) == "self" and _redirected(call):
                    result = "redirected-from-bridged"
            finally:
                bridge.end(call)
        return self._after(call, action, (verb.get("method") or "POST").upper(), {
            "QueueResult": result, "QueueSid": queue.sid,
            "QueueTime": str(member.wait_seconds if member else 0)})

    def _hold(self, call: Call, queue: Queue, member: Member, wait_url: str,
              wait_method: str) -> tuple[str, Bridge | None]:
        """The caller's time in the queue: wait documents until something takes them out."""
        while True:
            pending = call.pending()
            if pending is not None:
                kind, detail = pending
                if kind is Interrupt.DEQUEUED:
                    call.take()
                    return "bridged", self._dequeued(call, queue, member, detail)
                if kind is Interrupt.HANGUP:
                    self._remove(queue, member)
                    return "hangup", None
                if kind is Interrupt.REDIRECT:  # left for the interpreter to follow
                    if not self._remove(queue, member):
                        return self._taken(call, queue, member)
                    return "redirected", None
                call.take()
                continue
            if not wait_url:
                call.wait(self.cloud.timing.play())  # Twilio's own classical playlist
                continue
            params = {"QueuePosition": str(queue.position(call)),
                      "QueueTime": str(member.wait_seconds),
                      "AvgQueueTime": str(queue.average_wait),
                      "CurrentQueueSize": str(len(queue.members)), "QueueSid": queue.sid}
            outcome = self.cloud.interpreter.run_nested(call, Goto(wait_url, wait_method, params),
                                                        "wait")
            if outcome == LEAVE:
                if self._remove(queue, member):
                    return "leave", None
                return self._taken(call, queue, member)
            if outcome is FAILED:
                call.wait(self.cloud.timing.play())  # music plays on; try the wait URL again

    def _taken(self, call: Call, queue: Queue, member: Member) -> tuple[str, Bridge | None]:
        """An agent's dial took the caller just as they were leaving: they are bridged (or,
        if they hung up meanwhile, they hung up)."""
        detail = call.await_kind(Interrupt.DEQUEUED, timeout=5.0)
        if call.is_hung_up:
            return "hangup", None
        if detail is None:
            return "error", None
        return "bridged", self._dequeued(call, queue, member, detail)

    def _remove(self, queue: Queue, member: Member) -> bool:
        """Take `member` out of `queue`; False when an agent's dial took it first."""
        with self.lock:
            if member in queue.members:
                queue.members.remove(member)
                return True
            return False

    def _dequeued(self, call: Call, queue: Queue, member: Member, detail: dict) -> Bridge:
        bridge: Bridge = detail["bridge"]
        if detail.get("url"):
            params = {"QueueSid": queue.sid, "QueueTime": str(member.wait_seconds),
                      "DequeingCallSid": bridge.other(call).sid}
            self.cloud.interpreter.run_nested(call, Goto(detail["url"], detail["method"], params),
                                              "announce")
        bridge.ready.set()
        return bridge

    def _after(self, call: Call, action: str, method: str, params: dict) -> Goto | End | None:
        """Request a verb's action; a call that hung up or is being redirected requests it all
        the same, and Twilio ignores the answer."""
        if not action:
            return END if call.is_hung_up else None
        if call.is_hung_up or _redirected(call):
            self.cloud.webhooks.request(method, action, {**call.request_params(), **params})
            return END if call.is_hung_up else None
        return Goto(action, method, params)

    # --- <Dial> -------------------------------------------------------------------------------

    def dial(self, call: Call, verb: ET.Element, url: str) -> Goto | End | None:
        timeout = int(verb.get("timeout") or DIAL_TIMEOUT)
        action = urljoin(url, verb.get("action")) if verb.get("action") else ""
        method = (verb.get("method") or "POST").upper()
        nouns = list(verb)
        queue_noun = next((n for n in nouns if n.tag == "Queue"), None)
        if queue_noun is not None:
            params = self._dial_queue(call, queue_noun, url, timeout)
        else:
            target = next((n for n in nouns if n.tag in ("Number", "Client", "Sip")), None)
            if target is not None:
                text = (target.text or "").strip()
                address = {"Client": f"client:{text}", "Sip": text}.get(target.tag, text)
                leg_url = urljoin(url, target.get("url")) if target.get("url") else ""
            else:
                address, leg_url = (verb.text or "").strip(), ""
            caller_id = verb.get("callerId") or call.from_
            params = self._dial_number(call, address, caller_id, leg_url, timeout)
        return self._after(call, action, method, params)

    def _dial_queue(self, call: Call, noun: ET.Element, url: str, timeout: int) -> dict:
        name = (noun.text or "").strip()
        queue = self.queue(name, create=False)
        if queue is None:
            return {"DialCallStatus": "failed", "DequeueResult": "queue-not-found"}
        queue_url = urljoin(url, noun.get("url")) if noun.get("url") else ""
        deadline = time.monotonic() + self.cloud.timing.timer(timeout)
        while True:
            with self.lock:
                while not queue.members:
                    left = deadline - time.monotonic()
                    if left <= 0 or call.is_hung_up:
                        return {"DialCallStatus": "no-answer", "QueueSid": queue.sid,
                                "DequeueResult": "queue-empty"}
                    self.lock.wait(min(left, 0.1))
                member = queue.members.pop(0)
                member.left_at = time.time()
            caller = member.call
            bridge = Bridge(self.cloud, call, caller)
            self.cloud.journal.add(call, "dequeued", name, caller=caller.sid)
            caller.interrupt(Interrupt.DEQUEUED, bridge=bridge, url=queue_url,
                             method=(noun.get("method") or "POST").upper())
            while not bridge.ready.wait(0.05) and not caller.is_hung_up \
                    and not call.is_hung_up:
                pass
            if bridge.ready.is_set() or call.is_hung_up:
                break
            # The caller hung up as they were taken: Twilio bridges the next one in line.
        try:
            if bridge.ready.is_set() and not call.is_hung_up:
                bridge.talk(call)
        finally:
            bridge.end(call)
        return {"DialCallStatus": "completed", "DialCallSid": caller.sid,
                "DialCallDuration": str(bridge.seconds), "QueueSid": queue.sid,
                "DequeueResult": "bridged", "DequeuedCallSid": caller.sid,
                "DequeuedCallQueueTime": str(member.wait_seconds),
                "DequeuedCallDuration": str(bridge.seconds)}

    def _dial_number(self, call: Call, address: str, caller_id: str, leg_url: str,
                     timeout: int) -> dict:
        leg = self.cloud.new_call(to=address, from_=caller_id, direction="outbound-dial",
                                  parent_sid=call.sid, timeout=timeout)
        how = self.cloud.ring(leg, parent=call)
        if how != "answered":
            return {"DialCallStatus": how, "DialCallSid": leg.sid, "DialCallDuration": "0"}
        if leg_url:
            self.cloud.interpreter.run_nested(leg, Goto(leg_url), "whisper")
            if leg.is_hung_up:  # the callee declined at the whisper
                self.cloud.end(leg, Status.COMPLETED)
                return {"DialCallStatus": "no-answer", "DialCallSid": leg.sid,
                        "DialCallDuration": "0"}
        bridge = Bridge(self.cloud, call, leg)
        bridge.ready.set()
        thread = threading.Thread(target=self._leg_side, args=(bridge, leg), daemon=True,
                                  name=f"emulator-leg-{leg.sid[-6:]}")
        thread.start()
        try:
            if not call.is_hung_up:
                bridge.talk(call)
        finally:
            bridge.end(call)
        thread.join(timeout=30)
        return {"DialCallStatus": "completed", "DialCallSid": leg.sid,
                "DialCallDuration": str(bridge.seconds)}

    def _leg_side(self, bridge: Bridge, leg: Call) -> None:
        bridge.talk(leg)
        self.cloud.end(leg, Status.COMPLETED)


def _redirected(call: Call) -> bool:
    pending = call.pending()
    return pending is not None and pending[0] is Interrupt.REDIRECT
