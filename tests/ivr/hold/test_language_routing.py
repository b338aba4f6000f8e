"""Callers in line for an agent who speaks their language, through the real app and the
project's Twilio emulator: the agent who speaks it is rung first; after the queue's
`language_wait` anyone is, by the wait URL's next round with nothing else happening; the agent
hears the whisper in their own language, naming the caller's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from callback import runtime
from callback.deps import deps_of
from ivr.core.i18n.catalog import Phrasebook
from ivr.core.i18n.languages import foreign_letters
from ivr.hold import connect
from ivr.infra import paths
from ivr.infra.agents import add_agent, set_presence
from ivr.infra.services import services_of
from tests.callback.conftest import ACCOUNT_SID
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.ivr.hold.hold_support import TALKATIVE, Caller, Clock, Network, Wire, until
from tests.support.deliveries import flask_deliver
from tests.support.twilio_cloud import TwilioCloud

ENGLISH_LINE, HINDI_LINE, BENGALI_LINE = "+18005550100", "+18005550101", "+18005550102"
EVE, HARI = "+12125550001", "+12125550002"  # an English and a Hindi agent
LANGUAGE_WAIT = 60
BOOK = Phrasebook()

FLOWS = f"""
version: 1
defaults:
  language: en
  languages: {{en: {{}}, hi: {{}}, bn: {{}}}}
  operator: {{queue: support}}
  phrases:
    hi: {{var.order_number: "ऑर्डर नंबर"}}
numbers:
  "{ENGLISH_LINE}": english
  "{HINDI_LINE}": hindi
  "{BENGALI_LINE}": bengali
default_flow: english
queues:
  support:
    label: {{en: Support, hi: "सहायता", bn: "সহায়তা"}}
    language_wait: {LANGUAGE_WAIT}
    announce_every: 30
flows:
  english:
    start: line
    nodes:
      line: {{type: queue, queue: support}}
  hindi:
    language: hi
    start: line
    nodes:
      line: {{type: queue, queue: support}}
  bengali:
    language: bn
    start: order
    nodes:
      order:
        type: collect
        var: order_number
        prompt:
          bn: "আপনার অর্ডার নম্বর দিন, তারপর পাউন্ড চাপুন।"
          en: "Enter your order number, then press pound."
          hi: "अपना ऑर्डर नंबर डालें, फिर पाउंड दबाएँ।"
        next: line
      line: {{type: queue, queue: support}}
"""


@pytest.fixture
def flows_path(tmp_path: Path) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(FLOWS, encoding="utf-8")
    return path


@pytest.fixture
def twilio_cloud() -> Iterator[TwilioCloud]:
    with TwilioCloud(ACCOUNT_SID, AUTH_TOKEN) as cloud:
        yield cloud


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_config(app_config: dict, twilio_cloud, clock: Clock) -> dict:
    return {**app_config, "TWILIO_API_BASE": twilio_cloud.base_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "CLOCK": clock}


@pytest.fixture
def network(app, client, twilio_cloud: TwilioCloud, clock: Clock) -> Iterator[Network]:
    wire = Wire(flask_deliver(client, BASE_URL))
    twilio_cloud.deliver = wire
    for line in (ENGLISH_LINE, HINDI_LINE, BENGALI_LINE):
        twilio_cloud.emulator.configure_number(
            line, BASE_URL + paths.INCOMING, status_callback=BASE_URL + paths.STATUS,
            fallback_url=BASE_URL + paths.FALLBACK)
    twilio_cloud.default_script = TALKATIVE
    runtime.bind(deps_of(app))
    yield Network(twilio_cloud, clock, wire, BASE_URL)
    twilio_cloud.emulator.hang_up_all()
    twilio_cloud.wait_idle(10)


def agent(app, clock: Clock, name: str, number: str, languages: list[str]):
    db, r = services_of(app).db, services_of(app).redis
    row, _ = add_agent(db, r, name=name, kind="phone", address=number, queues=["support"],
                       languages=languages, wrap_up_seconds=0, now=clock())
    set_presence(db, r, row.id, "available", now=clock())
    clock.advance(1)  # the first agent added is the longest idle
    return row


def holding(network: Network, line: str, number: str, *keys: str) -> Caller:
    """A caller on `line` who presses `keys` at its menus and ends up holding for support."""
    call = network.dial(number, line)
    turn = call.turn()
    for pressed in keys:
        turn = call.do(pressed)
    # Each language waits in a Twilio queue of its own; English, the default, in plain support.
    held_in = {HINDI_LINE: "support.hi", BENGALI_LINE: "support.bn"}.get(line, "support")
    assert turn.waiting == "queue" and turn.queue == held_in, turn.text
    return call


def wait_rounds(network: Network, caller: Caller, n: int = 2) -> None:
    """Let the caller's wait URL be answered `n` more times (each round runs connect_agents;
    the round before the last has surely finished once the last has begun)."""
    mark = network.journal.last
    wait_url = network.url(paths.QUEUE_WAIT)
    until(lambda: sum(e["kind"] == "webhook" and e["text"].startswith(wait_url)
                      for e in caller.events(mark)) >= n, f"{n} wait rounds of {caller.sid}")


def says(document: str) -> list[ET.Element]:
    """Every <Say> of a TwiML document."""
    return list(ET.fromstring(document).iter("Say"))


def test_a_hindi_caller_rings_the_agent_who_speaks_hindi(app, network, twilio_cloud, clock):
    agent(app, clock, "Eve", EVE, ["en"])  # free the longest: without languages, rung first
    agent(app, clock, "Hari", HARI, ["hi", "en"])
    caller = holding(network, HINDI_LINE, "+14155550123")
    until(lambda: twilio_cloud.placed, "an agent call")
    wait_rounds(network, caller)
    assert [c.to for c in twilio_cloud.placed] == [HARI]


def test_an_english_caller_is_rung_the_longest_idle_agent_who_speaks_english(
        app, network, twilio_cloud, clock):
    agent(app, clock, "Quiet", EVE, [])  # said nothing: speaks the flows' default (English)
    agent(app, clock, "Hari", HARI, ["hi"])
    holding(network, ENGLISH_LINE, "+14155550123")
    until(lambda: twilio_cloud.placed, "an agent call")
    assert [c.to for c in twilio_cloud.placed] == [EVE]


def test_nobody_speaks_hindi_so_anyone_is_rung_after_language_wait(
        app, network, twilio_cloud, clock):
    agent(app, clock, "Eve", EVE, ["en"])
    caller = holding(network, HINDI_LINE, "+14155550123")
    wait_rounds(network, caller)
    assert twilio_cloud.placed == []  # Eve is free, but the caller may wait for Hindi
    network.pass_time(LANGUAGE_WAIT - 5)
    wait_rounds(network, caller)
    assert twilio_cloud.placed == []
    # Nothing else happens (no agent changes, no call ends): the wait URL's rounds retry.
    network.pass_time(5)
    until(lambda: twilio_cloud.placed, "Eve rung once the language wait is over")
    assert [c.to for c in twilio_cloud.placed] == [EVE]
    placed = twilio_cloud.placed[0]
    network.answer(placed, talk=30)
    network.settle(caller)
    assert network.bridged_to(caller) == placed.sid
    # Eve hears in English that the caller speaks Hindi.
    [whisper] = says(network.wire.answers(placed.sid, paths.HOLD_AGENT)[0].body)
    assert whisper.text.startswith("Hindi caller. Support line. Waited one minute. Press 1")
    # The caller hears the bridge announced in Hindi, in the Hindi voice.
    [connecting] = says(network.wire.answers(caller.sid, paths.HOLD_BRIDGING)[0].body)
    assert connecting.text == BOOK.say("hi", "hold.connecting")
    assert (connecting.get("language"), connecting.get("voice")) == ("hi-IN", "Polly.Aditi")


def test_a_caller_waiting_for_their_language_does_not_hold_up_the_callers_behind(
        app, network, twilio_cloud, clock):
    """Eve speaks English only; a Hindi caller is first in line, an English caller second.
    Eve is rung for the English caller at once, and bridged to that caller: each language
    waits in a Twilio queue of its own, so her <Dial><Queue> cannot take the Hindi caller."""
    agent(app, clock, "Eve", EVE, ["en"])
    first = holding(network, HINDI_LINE, "+14155550123")
    wait_rounds(network, first, 1)
    network.pass_time(10)
    second = holding(network, ENGLISH_LINE, "+14155550124")
    until(lambda: twilio_cloud.placed, "Eve rung for the English caller behind")
    r = services_of(app).redis
    offer = until(lambda: connect.offer_of(r, twilio_cloud.placed[0].sid).get("caller_sid"),
                  "the offer to be recorded")  # just after the ring is placed
    assert offer == second.sid
    placed = twilio_cloud.placed[0]
    network.answer(placed, talk=30)
    network.settle(second)
    assert network.bridged_to(second) == placed.sid
    assert network.bridged_to(first) == ""  # still holding for a Hindi speaker
    [whisper] = says(network.wire.answers(placed.sid, paths.HOLD_AGENT)[0].body)
    assert whisper.text.startswith("English caller.")


def test_the_whisper_is_in_the_agents_language_and_names_the_callers(
        app, network, twilio_cloud, clock):
    agent(app, clock, "Hari", HARI, ["hi"])
    caller = holding(network, BENGALI_LINE, "+14155550123", "12345")  # their order number
    wait_rounds(network, caller)
    assert twilio_cloud.placed == []  # nobody speaks Bengali: the caller waits a minute
    network.pass_time(LANGUAGE_WAIT)
    until(lambda: twilio_cloud.placed, "Hari rung once the language wait is over")
    placed = twilio_cloud.placed[0]
    network.answer(placed, talk=30)
    network.settle(caller)

    [whisper] = says(network.wire.answers(placed.sid, paths.HOLD_AGENT)[0].body)
    text = whisper.text
    assert (whisper.get("language"), whisper.get("voice")) == ("hi-IN", "Polly.Aditi")
    # Nothing but Devanagari: the order number is read as Hindi digits, not Latin ones.
    assert foreign_letters("hi", text) == "", text
    bengali = BOOK.template("hi", "language.bn")
    assert bengali and text.startswith(BOOK.say("hi", "whisper.language", language=bengali))
    assert BOOK.say("hi", "whisper.queue", queue="सहायता") in text
    assert BOOK.say("hi", "whisper.entered", name="ऑर्डर नंबर", value="12345") in text
    assert BOOK.say("hi", "whisper.waited_one") in text
    assert text.endswith(BOOK.say("hi", "agent.offer", whisper="").strip())
    # Hari's goodbye is Hindi too; the caller heard the bridge announced in Bengali.
    [goodbye] = says(network.wire.answers(placed.sid, paths.HOLD_AGENT_DIALED)[0].body)
    assert goodbye.text == BOOK.say("hi", "agent.goodbye") and goodbye.get("language") == "hi-IN"
    [connecting] = says(network.wire.answers(caller.sid, paths.HOLD_BRIDGING)[0].body)
    assert connecting.text == BOOK.say("bn", "hold.connecting")
    assert (connecting.get("language"), connecting.get("voice")) == (
        "bn-IN", "Google.bn-IN-Standard-A")
    assert network.bridged_to(caller) == placed.sid
