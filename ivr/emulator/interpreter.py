"""The TwiML interpreter: fetches a call's documents and carries out their verbs in order.

It follows Twilio's documented behaviour:
- relative URLs in TwiML are resolved against the document's own URL;
- a document that ends without a Redirect, Gather action or Hangup ends the call;
- a `<Gather>` without input runs the next verb (or its action, with `actionOnEmptyResult`);
- a webhook that fails (not 2xx, time-out, or not TwiML) goes to the fallback URL with
  `ErrorCode` and `ErrorUrl`; without one the caller hears Twilio's application error message
  and the call ends;
- a hang-up, a REST redirect or a dequeue interrupts whatever the call is doing at once.
`<Enqueue>`, `<Leave>` and `<Dial>` belong to `ivr.emulator.bridging`.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

from ivr.emulator.calls import Call, Interrupt, Listen, Status
from ivr.emulator.delivery import DOCUMENT_PARSE_FAILURE
from ivr.emulator.network import END, FAILED, LEAVE, End, Goto, Network

log = logging.getLogger(__name__)

APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."
MAX_DOCUMENTS = 500  # a call that fetches more documents than this is looping forever
# Verbs allowed where Twilio restricts them.
WAIT_VERBS = {"Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup"}
ANNOUNCE_VERBS = {"Say", "Play", "Pause", "Redirect"}  # <Queue url>, to the dequeued caller
WHISPER_VERBS = {"Say", "Play", "Pause", "Gather", "Hangup", "Redirect"}  # <Number url>


class Interpreter:
    """Runs documents for the calls of one emulated account."""

    def __init__(self, cloud: Network) -> None:
        self.cloud = cloud

    # --- documents ---------------------------------------------------------------------------

    def run_call(self, call: Call, goto: Goto) -> None:
        """Play the call's documents from `goto` until the call ends.

        A document that runs out ends the call, as on Twilio; a REST redirect that arrives
        meanwhile moves the call to its URL instead.
        """
        for _ in range(MAX_DOCUMENTS):
            root = self.fetch(call, goto, fatal=True)
            if root is None:
                return
            outcome = self.play(call, root, goto.url, "call")
            if isinstance(outcome, Goto):
                goto = outcome
                continue
            if outcome is END:
                return
            moved = self.interruption(call)
            if not isinstance(moved, Goto):
                return
            goto = moved
        self.cloud.journal.add(call, "error", "too many documents: the call loops forever")

    def run_nested(self, call: Call, goto: Goto, context: str) -> End | str | None:
        """Play documents in a restricted context (a queue's wait music, an announcement).

        Returns END after <Hangup>, LEAVE after <Leave>, FAILED when a document could not be
        fetched, or None when the documents ran out or an interrupt came (the caller of this
        method acts on `call.pending()`).
        """
        for _ in range(MAX_DOCUMENTS):
            if call.pending() is not None:
                return None
            root = self.fetch(call, goto, fatal=False)
            if root is None:
                return FAILED
            outcome = self.play(call, root, goto.url, context)
            if not isinstance(outcome, Goto):
                return outcome
            goto = outcome
        return None

    def fetch(self, call: Call, goto: Goto, *, fatal: bool) -> ET.Element | None:
        """Request a document; on failure try the fallback URL.

        When that fails too and the failure is `fatal` (the call's own document), the caller
        hears Twilio's application error message and None ends the call.
        """
        params = {**call.request_params(), **goto.params}
        answer = self.cloud.webhooks.request(goto.method, goto.url, params)
        if call.status is Status.RINGING and call.direction == "inbound":
            call.answered_at = time.time()  # Twilio answers an incoming call with its TwiML
            self.cloud.set_status(call, Status.IN_PROGRESS)
        self.cloud.journal.add(call, "webhook", goto.url, status=answer.status)
        root, code = (_parse(answer.body), None) if answer.ok else (None, answer.error_code)
        if answer.ok and root is None:
            code = DOCUMENT_PARSE_FAILURE
        if root is not None:
            return root
        self.cloud.journal.add(call, "error", f"webhook failed ({code})", url=goto.url,
                               status=answer.status)
        if call.fallback_url and not goto.params.get("ErrorCode"):
            extra = {"ErrorCode": str(code), "ErrorUrl": goto.url}
            fallback = self.cloud.webhooks.request("POST", call.fallback_url,
                                                   {**params, **extra})
            root = _parse(fallback.body) if fallback.ok else None
            if root is not None:
                return root
        if fatal:
            self.say(call, APPLICATION_ERROR)
        return None

    def interruption(self, call: Call) -> Goto | End | None:
        """Act on what interrupted the call's own document: a hang-up ends it, a REST redirect
        moves it; anything else is stale here (the call is in no queue or bridge) and dropped."""
        while True:
            pending = call.pending()
            if pending is None:
                return None
            kind, detail = pending
            if kind is Interrupt.HANGUP:
                return END
            call.take()
            if kind is Interrupt.REDIRECT:
                return Goto(detail["url"], detail.get("method", "POST"))
            self.cloud.journal.add(call, "error", f"dropped a stale {kind} interrupt")

    # --- verbs ---------------------------------------------------------------------------------

    def play(self, call: Call, root: ET.Element, url: str,
             context: str) -> Goto | End | str | None:
        """Carry out one document's verbs; return what comes next (None: it ran out)."""
        if root.tag != "Response":
            return END
        for verb in list(root):
            allowed = {"wait": WAIT_VERBS, "announce": ANNOUNCE_VERBS,
                       "whisper": WHISPER_VERBS}.get(context)
            if allowed is not None and verb.tag not in allowed:
                self.cloud.journal.add(call, "error", f"<{verb.tag}> is not allowed here")
                continue
            outcome = self.verb(call, verb, url, context)
            if outcome is not None:
                return outcome
            if call.pending() is not None:
                return None
        return None

    def verb(self, call: Call, verb: ET.Element, url: str,
             context: str) -> Goto | End | str | None:
        tag = verb.tag
        if tag == "Say":
            self.say(call, _text(verb), loops=int(verb.get("loop") or 1))
        elif tag == "Play":
            self.play_audio(call, _text(verb), int(verb.get("loop") or 1))
        elif tag == "Pause":
            call.wait(self.cloud.timing.timer(float(verb.get("length") or 1)))
        elif tag == "Gather":
            return self.gather(call, verb, url, context)
        elif tag == "Redirect":
            return Goto(urljoin(url, _text(verb)), (verb.get("method") or "POST").upper())
        elif tag == "Hangup":
            call.interrupt(Interrupt.HANGUP, by="twiml")
            return END
        elif tag == "Reject":
            self.cloud.end(call, Status.BUSY)
            return END
        elif tag == "Record":
            return self.record(call, verb, url)
        elif tag == "Leave":
            return LEAVE if context == "wait" else None
        elif tag == "Enqueue":
            return self.cloud.bridging.enqueue(call, verb, url)
        elif tag == "Dial":
            return self.cloud.bridging.dial(call, verb, url)
        elif tag in ("Start", "Stop", "Connect"):
            for stream in verb.iter("Stream"):
                self.cloud.journal.add(call, "stream", stream.get("url", ""), verb=tag,
                                       name=stream.get("name", ""))
            if tag == "Connect":
                call.wait(None)  # <Connect> holds the call until the stream ends
        else:
            self.cloud.journal.add(call, "error", f"unknown verb <{tag}>")
        return None

    def say(self, call: Call, text: str, loops: int = 1) -> None:
        """The far end hears `text`."""
        call.heard.append(text)
        self.cloud.journal.add(call, "say", text)
        call.wait(self.cloud.timing.say(text) * max(1, loops))

    def play_audio(self, call: Call, media_url: str, loops: int = 1) -> None:
        self.cloud.journal.add(call, "play", media_url)
        # loop="0" plays until something else happens to the call.
        call.wait(None if loops == 0 else self.cloud.timing.play(loops))

    def gather(self, call: Call, verb: ET.Element, url: str,
               context: str) -> Goto | End | str | None:
        prompt_seconds = 0.0
        for child in verb:
            if child.tag == "Say":
                text = _text(child)
                call.heard.append(text)
                self.cloud.journal.add(call, "say", text)
                prompt_seconds += self.cloud.timing.say(text)
            elif child.tag == "Play":
                self.cloud.journal.add(call, "play", _text(child))
                prompt_seconds += self.cloud.timing.play(int(child.get("loop") or 1))
            elif child.tag == "Pause":
                prompt_seconds += self.cloud.timing.timer(float(child.get("length") or 1))
        inputs = (verb.get("input") or "dtmf").split()
        num_digits = int(verb.get("numDigits")) if verb.get("numDigits") else None
        finish = verb.get("finishOnKey", "#")
        listen = Listen(prompt_seconds=prompt_seconds,
                        timeout=self.cloud.timing.timer(float(verb.get("timeout") or 5)),
                        num_digits=num_digits, finish_on_key=finish,
                        speech="speech" in inputs, in_queue=context == "wait")
        self.cloud.journal.add(call, "gather", "", in_queue=listen.in_queue,
                               num_digits=num_digits)
        reply = call.party.listen(call, listen)
        if call.pending() is not None:
            return None
        action = urljoin(url, verb.get("action") or url)
        method = (verb.get("method") or "POST").upper()
        if reply is not None and reply.digits and "dtmf" in inputs:
            digits, finished = reply.digits, ""
            if finish and finish in digits:
                digits, finished = digits.split(finish, 1)[0], finish
            elif num_digits:
                digits = digits[:num_digits]
            self.cloud.journal.add(call, "pressed", digits)
            return Goto(action, method, {"Digits": digits, "FinishedOnKey": finished})
        if reply is not None and reply.speech:
            if listen.speech:
                self.cloud.journal.add(call, "spoke", reply.speech)
                return Goto(action, method, {"SpeechResult": reply.speech,
                                             "Confidence": f"{reply.confidence:.2f}"})
            # Twilio only transcribes for a speech Gather; a menu that listens through a
            # media stream hears audio, which the emulator does not synthesise.
            self.cloud.journal.add(call, "unheard", reply.speech,
                                   why="this Gather takes keys only")
        if (verb.get("actionOnEmptyResult") or "").lower() == "true":
            return Goto(action, method, {"Digits": ""})
        return None

    def record(self, call: Call, verb: ET.Element, url: str) -> Goto | None:
        max_length = float(verb.get("maxLength") or 3600)
        self.cloud.journal.add(call, "recording", "", max_length=max_length)
        seconds = call.party.record(call, max_length)
        if call.pending() is not None or seconds <= 0:
            return None
        call.wait(self.cloud.timing.timer(seconds))
        hung_up = call.pending() is not None
        recording = self.cloud.add_recording(call, seconds)
        action = urljoin(url, verb.get("action") or url)
        # Digits is the key that ended the recording, if any: the emulated caller stops by
        # falling silent (or hanging up), never by a key.
        params = {"RecordingUrl": recording.url, "RecordingSid": recording.sid,
                  "RecordingDuration": str(int(seconds))}
        if hung_up:
            params["Digits"] = "hangup"
        self.cloud.journal.add(call, "recorded", recording.url, seconds=seconds)
        if hung_up:
            # Twilio still requests the action after a hang-up, and ignores what it answers.
            self.cloud.webhooks.request(verb.get("method") or "POST", action,
                                        {**call.request_params(), **params})
            return None
        return Goto(action, (verb.get("method") or "POST").upper(), params)


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def _parse(body: str) -> ET.Element | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    return root if root.tag == "Response" else None
