"""The languages agents speak: checked on the way in (API, CLI), shown on the way out, and used
to claim only agents who speak a caller's language. Real database, Redis and app."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ivr.commands.agents import agents_group
from ivr.infra import agents as ag
from ivr.infra.agents import AgentStatus, InvalidAgent
from ivr.infra.agents.fields import normalize_languages
from ivr.infra.agents.models import Agent
from tests.conftest import SHOP_FLOWS
from tests.ivr.hold.agent_support import T0, at

ADMIN = "admin-secret-for-tests-7c1e9a0b42"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


# --- the codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "known", "expected"),
    [
        ("hi, en,HI", None, ["hi", "en"]),  # trimmed, lower case, de-duplicated, order kept
        (["bn", "ta", "bn"], None, ["bn", "ta"]),
        ("", None, []),  # not said
        (["ko"], ["en", "ko"], ["ko"]),
    ],
)
def test_language_codes_are_normalised(given, known, expected):
    assert normalize_languages(given, known) == expected


@pytest.mark.parametrize(
    ("given", "known", "message"),
    [
        (["hi-IN"], None, "language 'hi-IN' must be a flow language code such as 'hi': "
                          "2 to 8 letters"),
        (["h"], None, "language 'h' must be a flow language code: 2 to 8 letters"),
        (["hn"], None, "language 'hn' is not one of the languages the service knows: "
                       "bn, en, hi, ko, ta"),
        (["hi"], ["en", "ko"], "language 'hi' is not one of the flows' languages: en, ko "
                               "(add it under defaults.languages in flows.yaml first)"),
        ([7], None, "language codes must be strings (got 7)"),
    ],
)
def test_bad_language_codes_say_what_to_write(given, known, message):
    with pytest.raises(InvalidAgent) as caught:
        normalize_languages(given, known)
    assert str(caught.value) == message


def test_agents_keep_their_languages_and_update_replaces_them(db, r):
    agent, _ = ag.add_agent(db, r, name="Asha", kind="phone", address="+14155550111",
                            queues="support", languages="hi,en", now=T0)
    assert ag.get_agent(db, agent.id).languages == ["hi", "en"]
    assert agent.to_dict()["languages"] == ["hi", "en"]
    ag.update_agent(db, r, agent.id, languages=["bn"], known_languages=["en", "bn"], now=T0)
    assert ag.get_agent(db, agent.id).languages == ["bn"]
    ag.update_agent(db, r, agent.id, name="Asha R", now=T0)  # languages not given: kept
    assert ag.get_agent(db, agent.id).languages == ["bn"]
    ag.update_agent(db, r, agent.id, languages="", now=T0)  # cleared
    assert ag.get_agent(db, agent.id).languages == []
    with pytest.raises(InvalidAgent, match="not one of the flows' languages: bn, en"):
        ag.update_agent(db, r, agent.id, languages=["hi"], known_languages=["en", "bn"])


def test_who_speaks_what():
    hindi = Agent(languages=["hi", "en"])
    silent = Agent(languages=[])
    assert ag.speaks(hindi, "hi", "en") and ag.speaks(hindi, "en", "en")
    assert not ag.speaks(hindi, "bn", "en")
    # An agent who said nothing speaks the flows' default language, and only that.
    assert ag.speaks(silent, "en", "en") and ag.speaks(silent, "", "en")
    assert not ag.speaks(silent, "hi", "en")
    assert ag.speaks(hindi, "", "hi")  # "": the caller has the flows' default language
    assert ag.whisper_language(hindi, "en") == "hi"
    assert ag.whisper_language(silent, "bn") == "bn"
    assert ag.whisper_language(None, "ta") == "ta"


# --- claiming among speakers ---------------------------------------------------------------


def _available(db, r, name, number, idle_at):
    agent, _ = ag.add_agent(db, r, name=name, kind="phone", address=number, queues="support",
                            now=T0)
    ag.set_presence(db, r, agent.id, "available", now=idle_at)
    return agent


def test_claim_among_takes_the_longest_idle_of_those_allowed(db, r):
    first = _available(db, r, "First", "+14155550121", at(1))
    second = _available(db, r, "Second", "+14155550122", at(2))
    third = _available(db, r, "Third", "+14155550123", at(3))
    # `first` is the longest idle of all, but only the other two may take this caller.
    claimed = ag.claim_agent(db, r, "support", at(10), among=[third.id, second.id])
    assert claimed.id == second.id
    assert ag.get_presence(db, r, second.id, at(10)).status is AgentStatus.BUSY
    # Allowed agents who are not free are skipped; nobody allowed and free: nobody.
    assert ag.claim_agent(db, r, "support", at(11), among=[second.id]) is None
    assert ag.claim_agent(db, r, "support", at(11), among=[]) is None
    assert ag.available_count(r, "support", at(11)) == 2
    # Without `among`, the longest idle as before.
    assert ag.claim_agent(db, r, "support", at(12)).id == first.id
    assert ag.claim_agent(db, r, "support", at(13), among=[first.id, third.id]).id == third.id


def test_claim_among_sees_an_ended_wrap_up(db, r):
    agent, _ = ag.add_agent(db, r, name="Wrap", kind="phone", address="+14155550131",
                            queues="support", wrap_up_seconds=30, now=T0)
    ag.set_presence(db, r, agent.id, "available", now=T0)
    assert ag.claim_agent(db, r, "support", at(1), among=[agent.id]).id == agent.id
    ag.release_agent(db, r, agent.id, now=at(2))  # wrap-up until at(32)
    assert ag.claim_agent(db, r, "support", at(20), among=[agent.id]) is None
    assert ag.claim_agent(db, r, "support", at(40), among=[agent.id]).id == agent.id


# --- the admin API -------------------------------------------------------------------------


@pytest.fixture
def admin(app):
    app.config["IVR_ADMIN_TOKEN"] = ADMIN
    return app.test_client()


def _create(client, **body):
    body = {"name": "Ann", "phone": "+14155550100", "queues": ["support"], **body}
    return client.post("/admin/agents", json=body, headers=AUTH)


def test_api_takes_languages_of_the_flows_and_returns_them(admin):
    # The test flows speak English and Korean.
    response = _create(admin, languages=["KO", "en", "ko"])
    assert response.status_code == 201, response.get_json()
    agent = response.get_json()["agent"]
    assert agent["languages"] == ["ko", "en"]
    shown = admin.get(f"/admin/agents/{agent['id']}", headers=AUTH).get_json()["agent"]
    assert shown["languages"] == ["ko", "en"]
    response = admin.patch(f"/admin/agents/{agent['id']}", json={"languages": "en"},
                           headers=AUTH)
    assert response.status_code == 200 and response.get_json()["agent"]["languages"] == ["en"]
    listed = admin.get("/admin/agents", headers=AUTH).get_json()["agents"]
    assert listed[0]["languages"] == ["en"]
    response = admin.patch(f"/admin/agents/{agent['id']}", json={"languages": []},
                           headers=AUTH)
    assert response.get_json()["agent"]["languages"] == []
    assert _create(admin, name="Bo", phone="+14155550101").get_json()["agent"]["languages"] == []


@pytest.mark.parametrize(
    ("languages", "message"),
    [
        (["hi"], "language 'hi' is not one of the flows' languages: en, ko (add it under "
                 "defaults.languages in flows.yaml first)"),
        (["en-IN"], "language 'en-IN' must be a flow language code such as 'en'"),
        (5, 'languages must be a list of flow language codes such as ["hi", "en"]'),
        ([None], "language codes must be strings (got None)"),
    ],
)
def test_api_refuses_bad_languages_with_a_message(admin, languages, message):
    response = _create(admin, languages=languages)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert admin.get("/admin/agents", headers=AUTH).get_json()["agents"] == []
    created = _create(admin).get_json()["agent"]
    response = admin.patch(f"/admin/agents/{created['id']}", json={"languages": languages},
                           headers=AUTH)
    assert response.status_code == 400 and message in response.get_json()["error"]


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def run(database_url, redis_url, redis_client):
    def invoke(*args, flows=str(SHOP_FLOWS)):
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "IVR_FLOWS": flows}
        return CliRunner().invoke(agents_group, list(args), env=env)

    return invoke


def test_cli_add_update_and_list_languages(run, db):
    result = run("add", "Ann", "--phone", "+14155550100", "--queues", "support",
                 "--languages", "ko,en")
    assert result.exit_code == 0, result.output
    assert "serving support, speaking ko,en" in result.output
    assert ag.get_agent(db, 1).languages == ["ko", "en"]
    lines = run("list").output.splitlines()
    assert lines[0].split()[-1] == "languages"
    assert lines[1].split()[-2:] == ["support", "ko,en"]
    assert json.loads(run("list", "--json").output)["agents"][0]["languages"] == ["ko", "en"]

    result = run("update", "Ann", "--languages", "hi")  # the shop flows have no Hindi
    assert result.exit_code == 1
    assert ("language 'hi' is not one of the flows' languages: en, ko (add it under "
            "defaults.languages in flows.yaml first)") in result.output
    assert ag.get_agent(db, 1).languages == ["ko", "en"]
    result = run("update", "Ann", "--languages", "")
    assert result.exit_code == 0, result.output
    assert ag.get_agent(db, 1).languages == []


def test_cli_without_readable_flows_checks_the_service_languages(run, db, tmp_path):
    missing = str(tmp_path / "nowhere.yaml")
    result = run("add", "Ann", "--phone", "+14155550100", "--queues", "support",
                 "--languages", "hi,bn", flows=missing)
    assert result.exit_code == 0, result.output
    assert "languages are checked against the languages the service knows" in result.stderr
    assert ag.get_agent(db, 1).languages == ["hi", "bn"]
    result = run("update", "1", "--languages", "xx", flows=missing)
    assert result.exit_code == 1
    assert "language 'xx' is not one of the languages the service knows: bn, en, hi, ko, ta" \
        in result.output
