"""Every caller hears their own language: a signed-webhook walk of the shipped flows.yaml in
each of its five languages.

For each language the caller picks it at the first menu (Korean has its own number), and the
walk reaches every state a caller can: each menu and entry node, a wrong key and silence at
each (the retries), the operator escape into the hold queue with its announcements, the
callback offer from hold and its confirmation, voicemail when nobody can answer, and the
fallback TwiML. Every <Say> the caller hears after choosing must be written in the call's
script (Devanagari, Bengali, Tamil, Hangul or Latin) and carry that language's `language` and
`voice`; the language menu itself says each line in the language it names.
"""

from __future__ import annotations

import datetime as dt
import shutil
import xml.etree.ElementTree as ET
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from ivr.core.engine.prompts import voice_of
from ivr.core.flows.loader import load_flows
from ivr.core.flows.schema import CollectNode, MenuNode
from ivr.core.i18n.languages import foreign_letters
from ivr.infra.services import services_of
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.ivr.helpers import act, staff
from tests.support.caller import SimulatedCall, Turn, flask_transport

SHIPPED = Path(__file__).resolve().parents[2] / "flows.yaml"
MAIN, KOREAN = "+18005550100", "+18005550199"
# A Tuesday at 11:00 in New York: open. A Sunday night: closed.
OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
CLOSED = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)
LANGUAGES = ("en", "hi", "bn", "ta", "ko")
MAX_DEPTH = 10


def language_digits(flows) -> dict[str, str]:
    """{language: digit} of the main flow's first menu (the language choice)."""
    flow = flows.flows[flows.flow_for_number(MAIN)]
    first = flow.nodes[flow.start]
    assert isinstance(first, MenuNode), "the main line starts with the language choice"
    return {o.set["language"]: o.digit for o in first.options if "language" in o.set}


def code_of(say_language: str) -> str:
    return say_language.split("-")[0]


class Ear:
    """Listens to every document of a call and checks each <Say> against the call's language."""

    def __init__(self, flows, language: str | None) -> None:
        self.defaults = flows.defaults
        self.language = language
        self.heard = 0

    def check(self, turn: Turn, where: str) -> None:
        for doc in turn.documents:
            for say in ET.fromstring(doc).iter("Say"):
                self._check_say(say, where)

    def _check_say(self, say: ET.Element, where: str) -> None:
        text = say.text or ""
        spoken_as = say.get("language", "")
        expected = self.language or code_of(spoken_as)  # before the choice: its own language
        want_language, want_voice = voice_of(self.defaults, expected)
        assert (spoken_as, say.get("voice")) == (want_language, want_voice), (where, text)
        assert foreign_letters(expected, text) == "", (where, expected, text)
        if expected in ("hi", "bn", "ta"):
            # A Latin digit inside Indic text may be read in English: numbers are words.
            assert not any(ch in "0123456789" for ch in text), (where, text)
        self.heard += 1


def node_of(turn: Turn) -> tuple[str, str, str]:
    query = parse_qs(urlsplit(turn.gather_action).query)
    return query["flow"][0], query["node"][0], query.get("step", [""])[0]


def inputs_for(flows, flow: str, node: str) -> list[str]:
    """Inputs that reach the node's every state: each choice, a wrong key, and silence."""
    if node.startswith("@"):
        return ["1", "2", "7", "wait"]
    spec = flows.flows[flow].nodes[node]
    if isinstance(spec, MenuNode):
        taken = {o.digit for o in spec.options}
        wrong = next(d for d in "987654321" if d not in taken and d != "0")
        return [*sorted(taken), wrong, "wait"]
    if isinstance(spec, CollectNode):
        return ["1" * spec.min_digits + "#", "9" + "0" * (spec.min_digits - 1) + "#", "12#",
                "wait"]
    return ["wait"]


def new_call(app, language: str, digits: dict[str, str], ear: Ear) -> SimulatedCall:
    """A call that has chosen `language` (the Korean line is its own number)."""
    call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN,
                         called=KOREAN if language == "ko" else MAIN)
    first = call.dial()
    if language != "ko":
        Ear(services_of(app).flows.current().file, None).check(first, "language menu")
        ear.check(call.press(digits[language]), "after the choice")
    else:
        ear.check(first, "korean line")
    return call


def walk(app, language: str, digits: dict[str, str]) -> tuple[Ear, set[tuple]]:
    """Breadth-first over input sequences after the choice; every document is checked."""
    flows = services_of(app).flows.current().file
    ear = Ear(flows, language)
    seen: set[tuple] = set()
    todo: deque[list[str]] = deque([[]])
    while todo:
        actions = todo.popleft()
        call = new_call(app, language, digits, ear)
        for a in actions:
            ear.check(act(call, a), f"{language} after {actions}")
        turn = call.turn
        if turn.waiting in ("record", "dial") and len(actions) < MAX_DEPTH:
            todo.append([*actions, "next"])
            continue
        if turn.waiting == "queue" or call.queue is not None:
            hold(call, ear, f"{language} holding after {actions}")
            continue
        if turn.waiting != "gather":
            continue
        where = node_of(turn)
        state = services_of(app).calls.load(call.call_sid)
        retries = (state.no_input, state.invalid) if state else (0, 0)
        if (*where, *retries) in seen:
            continue  # a retry is a state of its own: silence again leads somewhere else
        seen.add((*where, *retries))
        if len(actions) < MAX_DEPTH:
            todo.extend([*actions, i] for i in inputs_for(flows, where[0], where[1]))
    return ear, seen


def hold(call: SimulatedCall, ear: Ear, where: str) -> None:
    """On hold: announcements on entry and later, 0 (already waiting), then 1: the callback
    offer that keeps the place, and its confirmation."""
    ear.check(call.hold(position=3, queue_time=0), where + ": entry announcement")
    ear.check(call.hold(position=3, queue_time=200), where + ": later announcement")
    ear.check(call.press("0"), where + ": pressed 0")
    offer = call.press("1")
    ear.check(offer, where + ": callback offer")
    assert node_of(offer)[1] == "@callback", where
    ear.check(call.press("1"), where + ": callback confirmed")


@pytest.fixture
def shipped(app_config, tmp_path):
    target = tmp_path / "shipped_flows.yaml"
    shutil.copy(SHIPPED, target)
    app_config["IVR_FLOWS"] = str(target)
    return load_flows(target).file


def make_app(app_config, when: dt.datetime):
    from ivr import create_app

    return create_app({**app_config, "CLOCK": lambda: when})


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_state_speaks_the_callers_language(language, shipped, app_config, redis_client):
    digits = language_digits(shipped)
    assert set(digits) == {"en", "hi", "bn", "ta"}
    # Open, with an agent on a call: the queues take callers, who hear honest estimates.
    app = make_app(app_config, OPEN)
    staff(app, list(shipped.queues), status="busy")
    ear, open_states = walk(app, language, digits)
    services_of(app).db.dispose()
    # Closed: the escape offers a callback; silence there ends in voicemail.
    redis_client.flushdb()
    app = make_app(app_config, CLOSED)
    closed_ear, closed_states = walk(app, language, digits)
    services_of(app).db.dispose()
    states = open_states | closed_states
    nodes = {state[1] for state in states}
    assert {"@callback", "@voicemail"} <= nodes, sorted(nodes)
    assert ear.heard > 30 and closed_ear.heard > 10
    # Every node that speaks, in the flow this language's callers are in, was heard.
    flow = "korean" if language == "ko" else shipped.flow_for_number(MAIN)
    speaking = {n for n, node in shipped.flows[flow].nodes.items()
                if node.type in ("menu", "collect", "message", "callback", "voicemail")}
    reached = {state[1] for state in states if state[0] == flow}
    first = shipped.flows[flow].start
    assert speaking - reached - {first} == set(), sorted(speaking - reached)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_fallback_apologises_in_the_callers_language(language, shipped, app_config):
    """Twilio's fallback URL (our primary failed) speaks the call's language."""
    app = make_app(app_config, OPEN)
    staff(app, list(shipped.queues), status="busy")
    ear = Ear(shipped, language)
    call = new_call(app, language, language_digits(shipped), ear)
    turn = call._fetch(BASE_URL + "/voice/fallback", {"ErrorCode": "11200"})
    ear.check(turn, "fallback")
    assert turn.waiting == "queue" and "lang=" + language in turn.queue_wait_url
    services_of(app).db.dispose()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_callback_booked_while_closed_is_confirmed_with_its_time(language, shipped,
                                                                     app_config):
    """Sunday evening, the line closed: the caller is told when they will be called, in
    their language and their own time zone (San Francisco: 8 AM, the first legal hour)."""
    from sqlalchemy import select

    from callback.models import CallbackRequest
    from ivr.core.i18n.catalog import Phrasebook
    from ivr.core.i18n.when import spoken_after

    app = make_app(app_config, CLOSED)
    ear = Ear(shipped, language)
    call = new_call(app, language, language_digits(shipped), ear)
    offer = call.press("0")
    ear.check(offer, "closed: the callback offer")
    assert node_of(offer)[1] == "@callback"
    taken = call.press("1")
    ear.check(taken, "closed: the callback booked")
    with services_of(app).db.session() as session:
        row = session.scalars(select(CallbackRequest)).one()
        booked, row_language = row.scheduled_for, row.language
    los_angeles = ZoneInfo("America/Los_Angeles")
    local = booked.astimezone(los_angeles)
    assert (row_language, local.hour, local.date() - CLOSED.astimezone(los_angeles).date()) == (
        language, 8, dt.timedelta(days=1))
    when = spoken_after(Phrasebook(shipped.defaults.phrases), language, local,
                        CLOSED.astimezone(los_angeles))
    assert when in taken.text, taken.text
    if language == "en":
        assert "after 8 AM tomorrow" in taken.text
    services_of(app).db.dispose()
