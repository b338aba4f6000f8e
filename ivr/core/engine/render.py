"""TwiML for the nodes that speak or wait, built only with twilio's TwiML classes."""

from __future__ import annotations

import json

from twilio.twiml.voice_response import VoiceResponse

from ivr.core.callstate import CallState
from ivr.core.engine.prompts import Speaker
from ivr.core.engine.types import EngineView, StreamOffer
from ivr.core.flows.schema import CollectNode, DialNode
from ivr.core.i18n.languages import twilio_queue


def listening(
    eng: EngineView, r: VoiceResponse, st: CallState, spk: Speaker, prompts: list, *, timeout: int
) -> None:
    """Speak `prompts` inside a one-key <Gather>, so any key (0 above all) interrupts them.

    When the Gather ends without a key, Twilio runs the next verb: a redirect to 'continue'.
    """
    g = r.gather(
        input="dtmf",
        num_digits=1,
        timeout=timeout,
        action=eng.ports.url("gather", **st.at()),
        method="POST",
        action_on_empty_result=False,
    )
    spk.add(g, *prompts)
    r.redirect(eng.ports.url("continue", **st.at()), method="POST")


def confirm(eng: EngineView, r: VoiceResponse, st: CallState, spk: Speaker, text: str) -> None:
    """Ask a yes/no question by keypress (after an unsure speech match)."""
    g = r.gather(input="dtmf", num_digits=1, timeout=5,
                 action=eng.ports.url("gather", **st.at()), method="POST")
    spk.text(g, text)
    r.redirect(eng.ports.url("continue", **st.at()), method="POST")


def collecting(
    eng: EngineView,
    r: VoiceResponse,
    st: CallState,
    spk: Speaker,
    node: CollectNode,
    lead: list,
    timeout: int,
) -> None:
    """Collect several digits; the escape here is the collect key (star), since 0 is data."""
    g = r.gather(
        input="dtmf",
        num_digits=node.max_digits,
        finish_on_key=node.finish_on_key,
        timeout=timeout,
        action=eng.ports.url("gather", **st.at()),
        method="POST",
        action_on_empty_result=False,
    )
    spk.add(g, *lead, node.prompt)
    r.redirect(eng.ports.url("continue", **st.at()), method="POST")


def speech_stream(r: VoiceResponse, offer: StreamOffer, st: CallState,
                  choices: dict[str, list[str]], status_callback: str | None = None) -> None:
    """Fork the caller's audio to our recogniser for this menu (<Start><Stream>)."""
    start = r.start()
    kwargs = {"status_callback": status_callback, "status_callback_method": "POST"} \
        if status_callback else {}
    # Stream names must be unique while streams run: a re-prompt of the menu gets a new one.
    stream = start.stream(url=offer.url, track="inbound_track",
                          name=f"{st.call_sid}:{st.node}:{st.no_input}:{st.invalid}", **kwargs)
    stream.parameter(name="flow", value=st.flow)
    stream.parameter(name="node", value=st.node)
    stream.parameter(name="turn", value=str(st.turn))
    stream.parameter(name="language", value=st.language)
    stream.parameter(name="choices", value=json.dumps(choices, ensure_ascii=False))
    for name, value in offer.parameters.items():
        stream.parameter(name=name, value=value)


def enqueue(eng: EngineView, r: VoiceResponse, st: CallState, queue: str) -> None:
    """Put the caller in the hold queue for a person. `v` names this visit (the document's
    turn): a late or repeated wait-URL request of a visit that ended cannot start it again.
    `lang` is the caller's language: the hold queue speaks it (the URL is signed), and
    callers of each language wait in a Twilio queue of their own (`twilio_queue`)."""
    r.enqueue(
        twilio_queue(queue, st.language, eng.defaults.language),
        wait_url=eng.ports.url("queue_wait", queue=queue, v=st.turn, lang=st.language),
        wait_url_method="POST",
        action=eng.ports.url("queue_left", queue=queue, v=st.turn, lang=st.language),
        method="POST",
    )


def dial(eng: EngineView, r: VoiceResponse, st: CallState, node: DialNode) -> None:
    """Ring an outside number; its outcome comes back to 'dialed'."""
    kwargs = {"caller_id": node.caller_id} if node.caller_id else {}
    r.dial(
        node.number,
        timeout=node.timeout,
        action=eng.ports.url("dialed", **st.at()),
        method="POST",
        **kwargs,
    )


def record(eng: EngineView, r: VoiceResponse, st: CallState, max_length: int) -> None:
    """Record a voicemail; pound ends it."""
    r.record(
        max_length=max_length,
        finish_on_key="#",
        play_beep=True,
        action=eng.ports.url("recorded", **st.at()),
        method="POST",
    )
