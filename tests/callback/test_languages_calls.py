"""Callback calls speak the request's language to the customer and the agent's own language to
the agent, through the REST stand-in and signed webhooks: every <Say> checked for its script,
`language` and `voice`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from callback.models import CallbackAttempt, CallbackRequest
from ivr.core.i18n.catalog import Phrasebook
from ivr.infra.agents.models import Agent
from tests.callback.conftest import AGENT_NUMBER, CUSTOMER
from tests.callback.languages_support import assert_spoken_in, says, speak_indian_languages
from tests.support.twilio_cloud import CallScript

BENGALI = ("bn", "bn-IN", "Google.bn-IN-Standard-A")
HINDI = ("hi", "hi-IN", "Polly.Aditi")
ENGLISH = ("en", "en-US", "Polly.Joanna")  # the test flows' own English voice


@pytest.fixture
def app_config(app_config: dict, flows_path: Path) -> dict:
    speak_indian_languages(flows_path)
    return app_config


def _agent_speaks(deps, agent, languages: list[str]) -> None:
    with deps.db.session() as s:
        s.execute(update(Agent).where(Agent.id == agent.id).values(languages=languages))


def _ask(client, language: str = "bn", **fields) -> dict:
    made = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER,
                                           "language": language, **fields})
    assert made.status_code == 202, made.get_json()
    return made.get_json()


def _spoken(documents: list[str]) -> list[tuple[str, str | None, str | None]]:
    return [say for doc in documents for say in says(doc)]


def _whispers(twilio_cloud, call) -> list[str]:
    """The documents each leg our call dialled fetched (the whisper, customer-first)."""
    return [doc for child in twilio_cloud.children(call.sid)
            for doc in twilio_cloud.documents_of(child.sid)]


def test_customer_first_in_bengali_with_a_hindi_speaking_agent(callback_app, client, deps,
                                                                agent, twilio_cloud, run_jobs):
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    _agent_speaks(deps, agent, ["hi", "en"])
    _ask(client, "bn")
    run_jobs()
    call = twilio_cloud.placed[0]
    assert call.to == CUSTOMER
    twilio_cloud.drive_pending()
    # The customer: the greeting and its no-answer line, "connecting", then the goodbye.
    customer = _spoken(call.documents)
    bengali = Phrasebook()
    assert [text for text, _, _ in customer] == [
        bengali.say("bn", key) for key in ("callback.hello", "callback.no_answer",
                                           "callback.connecting", "callback.thanks")]
    assert_spoken_in(*BENGALI, customer)
    # The agent, in Hindi: the line, the customer's language named in Hindi, how long ago.
    whisper = _spoken(_whispers(twilio_cloud, call))
    assert_spoken_in(*HINDI, whisper)
    assert len(whisper) == 1
    text = whisper[0][0]
    assert "सहायता" in text and "बंगाली" in text
    assert call.whispered == [text]
    with deps.db.session() as s:
        assert s.scalar(select(CallbackRequest.status)) == "completed"


def test_agent_first_whisper_and_goodbye_are_in_the_agents_language(client, deps, agent,
                                                                     twilio_cloud, run_jobs):
    _agent_speaks(deps, agent, ["hi"])
    _ask(client, "bn", reason="ऑर्डर 1234 की वापसी")
    run_jobs()
    call = twilio_cloud.placed[0]
    assert call.to == AGENT_NUMBER
    twilio_cloud.drive_pending()
    heard = _spoken(call.documents)
    # The whisper before the customer is dialled, and "the callback has ended" after.
    assert len(heard) == 2
    assert_spoken_in(*HINDI, heard)
    assert "बंगाली" in heard[0][0] and "ऑर्डर 1234 की वापसी" in heard[0][0]


def test_an_agent_who_lists_no_language_hears_the_flows_default(callback_app, client, deps,
                                                                 agent, twilio_cloud, run_jobs):
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    _ask(client, "ta")
    run_jobs()
    call = twilio_cloud.placed[0]
    twilio_cloud.drive_pending()
    assert_spoken_in("ta", "ta-IN", "Google.ta-IN-Standard-A", _spoken(call.documents))
    whisper = _spoken(_whispers(twilio_cloud, call))
    assert_spoken_in(*ENGLISH, whisper)
    assert whisper[0][0] == ("Callback for the support line. Tamil caller. They asked just now. "
                             "Connecting you now.")


@pytest.mark.parametrize("script, key", [
    (CallScript(answer="machine"), "callback.machine"),
    (CallScript(digits="2"), "callback.declined"),
    (CallScript(digits=""), "callback.no_answer"),
])
def test_every_customer_leg_speaks_bengali(callback_app, client, deps, agent, twilio_cloud,
                                           run_jobs, script, key):
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    twilio_cloud.script(CUSTOMER, script)
    _ask(client, "bn")
    run_jobs()
    call = twilio_cloud.placed[0]
    twilio_cloud.drive_pending()
    heard = _spoken(call.documents)
    assert_spoken_in(*BENGALI, heard)
    assert heard[-1][0] == Phrasebook().say("bn", key)


def test_a_late_answer_to_a_cancelled_callback_is_told_in_bengali(callback_app, client, deps,
                                                                   agent, twilio_cloud,
                                                                   run_jobs, twilio_post):
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    made = _ask(client, "bn")
    run_jobs()
    call = twilio_cloud.placed[0]
    client.delete(f"/callbacks/{made['id']}", headers={"X-Callback-Token": made["token"]})
    with deps.db.session() as s:
        attempt = s.scalar(select(CallbackAttempt))
    # The customer's phone answered just before the hang-up reached it.
    resp = twilio_post(f"/callbacks/voice/customer?attempt={attempt.id}",
                       {"CallSid": call.sid, "CallStatus": "in-progress", "AnsweredBy": "human"})
    heard = _spoken([resp.get_data(as_text=True)])
    assert_spoken_in(*BENGALI, heard)
    assert [text for text, _, _ in heard] == [Phrasebook().say("bn", "callback.cancelled")]
    assert "<Hangup />" in resp.get_data(as_text=True)
