"""The flow engine: (flows, call state, caller input) -> TwiML, new state and journey events.

It does no I/O of its own: time, URLs, queue staffing and callback requests come through
`Ports`. Every node that speaks wraps its prompt in a <Gather> that accepts the operator escape,
so a caller can always reach a person (or, when nobody can answer, a callback offer).

Built-in targets start with '@': '@operator' (the escape), '@callback' (offer a callback for the
queue in `state.vars['_queue']`), '@voicemail' and '@hangup'.
"""

from __future__ import annotations

import dataclasses
import logging

from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.engine import answers, instant, render
from ivr.core.engine import callback_offer as offer
from ivr.core.engine.prompts import Speaker
from ivr.core.engine.types import (
    CALLBACK,
    HANGUP,
    OPERATOR,
    VOICEMAIL,
    Event,
    Input,
    InputKind,
    Ports,
    Step,
)
from ivr.core.flows.schema import (
    CallbackNode,
    CollectNode,
    DialNode,
    FlowFile,
    HangupNode,
    MenuNode,
    MessageNode,
    Node,
    QueueNode,
    VoicemailNode,
    phrases_for,
)
from ivr.core.i18n.catalog import Phrasebook

log = logging.getLogger(__name__)

# More instant hops (branch, hours, goto_flow) than this in one webhook means a loop.
MAX_HOPS = 50


class Engine:
    """Runs the flows of one `FlowFile` version."""

    def __init__(self, flows: FlowFile, ports: Ports) -> None:
        self.flows = flows
        self.ports = ports
        self.defaults = flows.defaults
        self.phrases = Phrasebook(flows.defaults.phrases)

    # --- entry points ------------------------------------------------------------------------

    def start(self, state: CallState) -> Step:
        """Answer a new call: enter its flow's start node."""
        step = self._step(state)
        step.events.append(Event("call_start", flow=state.flow, detail={"caller": state.caller}))
        self.goto(step, self.flows.flows[state.flow].start)
        return step

    def render_current(self, state: CallState) -> Step:
        """Where `state` is, rendered again on a copy: `state` and its turn stay as they are."""
        st = dataclasses.replace(state, vars=dict(state.vars))
        step = Step(twiml=VoiceResponse(), state=st)
        node = None if st.node.startswith("@") else self._node(st.flow, st.node)
        if node is None:
            self._enter_builtin(step, st.node if st.node.startswith("@") else OPERATOR, None)
        else:
            self._render(step, node, None)
        return step

    def resume(self, state: CallState, flow: str, node: str, given: Input) -> Step:
        """Handle what the caller did at `node` of `flow` (named in the webhook URL)."""
        step = self._step(state)
        state.flow, state.node = flow, node
        if node.startswith("@"):
            self._resume_builtin(step, node, given)
            return step
        current = self._node(flow, node)
        if current is None:
            # The node vanished (e.g. a version we cannot load any more): never strand the caller.
            step.events.append(Event("error", flow=flow, node=node, detail={"missing": True}))
            self.goto(step, OPERATOR)
            return step
        self._record_input(step, given)
        if answers.is_escape(self.flows, current, given, state.language):
            step.events.append(Event("escape", flow=flow, node=node, digits=given.digits or None))
            self.goto(step, OPERATOR)
            return step
        handler = {
            MessageNode: self._resume_message,
            MenuNode: self._resume_menu,
            CollectNode: self._resume_collect,
            QueueNode: self._resume_passthrough,
            DialNode: self._resume_dial,
            CallbackNode: self._resume_callback,
            VoicemailNode: self._resume_voicemail,
            HangupNode: self._resume_hangup,
        }.get(type(current), self._resume_passthrough)
        handler(step, current, given)
        return step

    # --- moving between nodes ----------------------------------------------------------------

    def goto(self, step: Step, target: str, *, lead_in: list | None = None) -> None:
        """Enter `target`, following instant nodes, and render the first node that speaks."""
        st = step.state
        for _ in range(MAX_HOPS):
            st.no_input = st.invalid = 0
            st.step = ""
            st.node = target
            st.node_entered_at = self.ports.now().timestamp()
            step.events.append(Event("enter", flow=st.flow, node=target))
            if target.startswith("@"):
                self._enter_builtin(step, target, lead_in)
                return
            node = self._node(st.flow, target)
            if node is None:
                step.events.append(Event("error", flow=st.flow, node=target))
                target = OPERATOR
                continue
            nxt = instant.next_node(self.flows, st, node, self.ports.now())
            if nxt is None:
                self._render(step, node, lead_in)
                return
            target = nxt
        log.error("flow loop without input", extra={"call_sid": st.call_sid, "node": target})
        step.events.append(Event("error", flow=st.flow, node=target, detail={"loop": True}))
        self._enter_builtin(step, OPERATOR, lead_in)

    # --- rendering ---------------------------------------------------------------------------

    def _render(self, step: Step, node: Node, lead_in: list | None) -> None:
        st = step.state
        r = step.twiml
        lead = lead_in or []
        spk = self._speaker(st)
        match node:
            case MessageNode() | HangupNode():
                render.listening(self, r, st, spk, [*lead, node.prompt], timeout=1)
            case MenuNode():
                stream = self.ports.speech_stream_url(st, st.node)
                if stream:
                    choices = answers.menu_choices(self.flows, node, st.language)
                    render.speech_stream(r, stream, st, choices,
                                         self.ports.url("speech_status", **st.at()))
                render.listening(
                    self, r, st, spk, [*lead, node.prompt], timeout=self._no_input(node).timeout
                )
            case CollectNode():
                render.collecting(self, r, st, spk, node, lead, self._no_input(node).timeout)
            case QueueNode():
                self._to_queue(step, node.queue, [*lead, node.prompt])
            case DialNode():
                spk.add(r, *lead, node.prompt)
                render.dial(self, r, st, node)
            case CallbackNode():
                st.vars["_queue"] = node.queue or self.operator_queue()
                offer.render_offer(self, r, st, spk, lead, node.prompt)
            case VoicemailNode():
                render.listening(self, r, st, spk, [*lead, node.prompt], timeout=1)

    def _enter_builtin(self, step: Step, target: str, lead_in: list | None) -> None:
        st = step.state
        spk = self._speaker(st)
        lead = lead_in or []
        if target == OPERATOR:
            op = self.defaults.operator
            said = (op.prompt if op else None) or self._said(st, "operator.connecting")
            self._to_queue(step, self.operator_queue(), [*lead, said])
        elif target == CALLBACK:
            st.vars.setdefault("_queue", self.operator_queue())
            offer.render_offer(self, step.twiml, st, spk, lead, None)
        elif target == VOICEMAIL:
            render.listening(self, step.twiml, st, spk, [*lead, self._said(st, "voicemail.prompt")],
                             timeout=1)
        else:  # HANGUP
            spk.add(step.twiml, *lead)
            spk.text(step.twiml, self._said(st, "call.goodbye"))
            step.twiml.hangup()
            step.outcome = "hangup"

    def _to_queue(self, step: Step, queue: str, prompts: list) -> None:
        """Join `queue` if someone can answer it; otherwise offer a callback. Never hang up."""
        st = step.state
        spk = self._speaker(st)
        if self.ports.queue_available(queue):
            spk.add(step.twiml, *prompts)
            render.enqueue(self, step.twiml, st, queue)
            step.events.append(
                Event("transfer", flow=st.flow, node=st.node, detail={"queue": queue})
            )
            step.outcome = "queued"
            return
        step.events.append(Event("closed", flow=st.flow, node=st.node, detail={"queue": queue}))
        st.vars["_queue"] = queue
        st.node = CALLBACK
        st.step = ""
        closed = self.defaults.closed_prompt or self._said(st, "closed.away")
        queue_cfg = self.flows.queues.get(queue)
        if queue_cfg is not None and queue_cfg.when_closed == "voicemail":
            st.node = VOICEMAIL
            said = [closed, self._said(st, "voicemail.prompt")]
            render.listening(self, step.twiml, st, spk, said, timeout=1)
            return
        offer.render_offer(self, step.twiml, st, spk, [closed], None)

    # --- resuming each kind of node -----------------------------------------------------------

    def _resume_message(self, step: Step, node: MessageNode, given: Input) -> None:
        self.goto(step, node.next)

    def _resume_hangup(self, step: Step, node: HangupNode, given: Input) -> None:
        step.twiml.hangup()
        step.outcome = "hangup"
        step.events.append(Event("hangup", flow=step.state.flow, node=step.state.node))

    def _resume_passthrough(self, step: Step, node: Node, given: Input) -> None:
        # Input for a node that does not wait for any (e.g. a late request): enter it again.
        self.goto(step, step.state.node)

    def _resume_menu(self, step: Step, node: MenuNode, given: Input) -> None:
        st = step.state
        if given.kind is InputKind.NO_INPUT:
            return self._retry_no_input(step, node)
        if st.step.startswith("confirm:"):
            digit = st.step.partition(":")[2]
            if given.digits == "1" and digit == answers.OPERATOR_KEY:
                step.events.append(Event("escape", flow=st.flow, node=st.node))
                return self.goto(step, OPERATOR)
            if given.digits == "1":
                return self._choose(step, node, digit)
            st.step = ""
            return self._goto_same(step, node, [])
        if given.kind is InputKind.DIGITS:
            for option in node.options:
                if option.digit == given.digits:
                    return self._choose(step, node, option.digit)
            return self._retry_invalid(step, node)
        result = answers.match_menu(self.flows, node, st.language, given)
        if result is None or result.key is None:
            return self._retry_invalid(step, node)
        if result.needs_confirmation:
            st.step = f"confirm:{result.key}"
            option = next((o for o in node.options if o.digit == result.key), None)
            said = (phrases_for(option.say, st.language) or [option.digit])[0] if option else \
                answers.operator_phrases(self.flows, st.language)[0]  # match_menu checked it
            render.confirm(self, step.twiml, st, self._speaker(st),
                           self._said(st, "menu.did_you_say", choice=said))
            return None
        return self._choose(step, node, result.key)

    def _choose(self, step: Step, node: MenuNode, digit: str) -> None:
        option = next(o for o in node.options if o.digit == digit)
        step.state.vars.update(option.set)
        if "language" in option.set:
            step.state.language = option.set["language"]
        step.events.append(
            Event("choice", flow=step.state.flow, node=step.state.node, digits=digit,
                  detail={"goto": option.goto})
        )
        self.goto(step, option.goto)

    def _resume_collect(self, step: Step, node: CollectNode, given: Input) -> None:
        if given.kind is InputKind.NO_INPUT or not (given.digits or given.text):
            return self._retry_no_input(step, node)
        digits = given.digits.rstrip(node.finish_on_key)
        if given.kind is InputKind.DIGITS and digits.isdigit() and (
            node.min_digits <= len(digits) <= node.max_digits
        ):
            step.state.vars[node.var] = digits
            step.events.append(Event("collected", flow=step.state.flow, node=step.state.node,
                                     digits=digits, detail={"var": node.var}))
            return self.goto(step, node.next)
        return self._retry_invalid(step, node)

    def _resume_dial(self, step: Step, node: DialNode, given: Input) -> None:
        st = step.state
        step.events.append(Event("dial_result", flow=st.flow, node=st.node,
                                 detail={"status": given.status, "number": node.number}))
        if given.status == "completed":
            step.twiml.hangup()
            step.outcome = "dialed"
            return
        lead = [self._said(st, "call.dial_failed")]
        self.goto(step, node.on_fail or OPERATOR, lead_in=lead)

    def _resume_voicemail(self, step: Step, node: VoicemailNode, given: Input) -> None:
        self._voicemail_step(step, given, node.max_length, node.next)

    def _resume_callback(self, step: Step, node: CallbackNode, given: Input) -> None:
        offer.resume(self, step, given, node.next)

    def _resume_builtin(self, step: Step, node: str, given: Input) -> None:
        self._record_input(step, given)
        if node == CALLBACK:
            offer.resume(self, step, given, None)
        elif node == VOICEMAIL:
            self._voicemail_step(step, given, 180, None)
        elif node == HANGUP:
            step.twiml.hangup()
            step.outcome = "hangup"
        else:
            self.goto(step, OPERATOR)

    def _voicemail_step(self, step: Step, given: Input, max_length: int, nxt: str | None) -> None:
        st = step.state
        if given.kind is InputKind.RECORDED:
            step.events.append(Event("voicemail", flow=st.flow, node=st.node, detail={
                "recording_url": given.recording_url, "seconds": given.recording_seconds}))
            step.outcome = "voicemail"
            lead = [self._said(st, "voicemail.thanks")]
            if nxt:
                return self.goto(step, nxt, lead_in=lead)
            return self.goto(step, HANGUP, lead_in=lead)
        if given.kind is InputKind.DIGITS and self.is_operator_digit(given.digits):
            return self.goto(step, OPERATOR)
        render.record(self, step.twiml, st, max_length)
        return None

    # --- retries -----------------------------------------------------------------------------

    def _retry_no_input(self, step: Step, node: Node) -> None:
        self._retry(step, node, "no_input", self._no_input(node))

    def _retry_invalid(self, step: Step, node: Node) -> None:
        self._retry(step, node, "invalid", node.invalid_input or self.defaults.invalid_input)

    def _retry(self, step: Step, node: Node, counter: str, cfg) -> None:
        """Count one more silence or wrong answer; re-prompt, or give up to `_fail`."""
        st = step.state
        count = getattr(st, counter) + 1
        setattr(st, counter, count)
        step.events.append(Event(counter, flow=st.flow, node=st.node, detail={"count": count}))
        if count > cfg.retries:
            return self._fail(step, node)
        return self._goto_same(step, node, [
            cfg.prompt or self._said(st, f"retry.{counter}")])

    def _fail(self, step: Step, node: Node) -> None:
        """Retries ran out: go to the node's on_fail, else to a person (or a callback)."""
        step.events.append(Event("retries_exhausted", flow=step.state.flow, node=step.state.node))
        self.goto(step, node.on_fail or OPERATOR)

    def _goto_same(self, step: Step, node: Node, lead: list) -> None:
        """Re-render `node` keeping its retry counters."""
        st = step.state
        keep = (st.no_input, st.invalid)
        self._render(step, node, lead)
        st.no_input, st.invalid = keep

    # --- input helpers -----------------------------------------------------------------------

    def is_operator_digit(self, digits: str) -> bool:
        """True when `digits` is the operator escape (0, or the collect key)."""
        return answers.is_operator_digit(self.flows, digits)

    def _record_input(self, step: Step, given: Input) -> None:
        if (event := answers.input_event(step.state, given)) is not None:
            step.events.append(event)

    # --- small lookups -----------------------------------------------------------------------

    def _step(self, state: CallState) -> Step:
        state.turn += 1  # a new document: its action URLs carry this turn
        return Step(twiml=VoiceResponse(), state=state)

    def _node(self, flow: str, name: str) -> Node | None:
        f = self.flows.flows.get(flow)
        return f.nodes.get(name) if f else None

    def _said(self, st: CallState, key: str, **values: object) -> str:
        return self.phrases.say(st.language, key, **values)

    def _speaker(self, st: CallState) -> Speaker:
        return Speaker(self.defaults, st.language, self.phrases)

    def _no_input(self, node: Node):
        return node.no_input or self.defaults.no_input

    def operator_queue(self) -> str:
        """The queue the operator escape leads to."""
        op = self.defaults.operator
        return op.queue if op else next(iter(self.flows.queues), "support")

