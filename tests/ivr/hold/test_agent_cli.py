"""`ivr agents` through click's CliRunner against the configured database and Redis."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ivr.commands.agents import agents_group
from ivr.infra import agents as ag
from ivr.infra.db import utcnow


@pytest.fixture
def run(database_url, redis_url, redis_client):
    def invoke(*args, redis=True, input=None):
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url if redis else ""}
        return CliRunner().invoke(agents_group, list(args), env=env, input=input)

    return invoke


def test_add_list_status_remove(run, db, r):
    result = run("add", "Ann Lee", "--phone", "+1 415 555 0100", "--queues", "support,billing",
                 "--wrap-up", "20")
    assert result.exit_code == 0, result.output
    assert "added agent 1: Ann Lee (phone +14155550100) serving support,billing" in result.output
    token = result.output.rsplit(": ", 1)[1].strip()
    assert ag.agent_by_token(db, token).name == "Ann Lee"

    result = run("status", "Ann Lee", "available")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "agent 1 (Ann Lee) is available"
    assert ag.available_count(r, "billing", utcnow()) == 1

    result = run("list", "--queue", "billing")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["1", "Ann", "Lee", "available", "+14155550100", "support,billing"]
    assert lines[-1] == "queue billing: 1 staffed, 1 available"

    data = json.loads(run("list", "--json").output)
    assert data["agents"][0]["presence"]["status"] == "available"
    assert data["agents"][0]["wrap_up_seconds"] == 20

    result = run("update", "1", "--queues", "sales", "--wrap-up", "5")
    assert result.exit_code == 0, result.output
    assert "serving sales, wrap-up 5s" in result.output
    assert ag.available_count(r, "billing", utcnow()) == 0
    assert ag.available_count(r, "sales", utcnow()) == 1

    result = run("remove", "+14155550100", input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    result = run("remove", "+14155550100", "--yes")
    assert result.exit_code == 0, result.output
    assert ag.roster(db) == []
    assert ag.staffed_count(r, "sales", utcnow()) == 0


def test_errors_are_plain_messages(run):
    result = run("add", "Ann", "--phone", "4155550100", "--queues", "support")
    assert result.exit_code == 1
    assert "E.164" in result.output
    result = run("add", "Ann", "--phone", "+14155550100", "--sip", "sip:a@b.c", "--queues", "s")
    assert result.exit_code == 2
    assert "exactly one of --phone, --sip or --client" in result.output
    result = run("status", "nobody", "available")
    assert result.exit_code == 1
    assert "no agent with id, name or address 'nobody'" in result.output
    result = run("status", "1", "sleeping")
    assert result.exit_code == 2


def test_presence_changes_need_the_shared_redis(run):
    assert run("add", "Ann", "--client", "ann", "--queues", "support", redis=False).exit_code == 0
    result = run("status", "Ann", "available", redis=False)
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.output
    result = run("list", redis=False)
    assert result.exit_code == 0
    assert "live presence is not shown" in result.stderr
    assert result.stdout.splitlines()[1].split() == ["1", "Ann", "?", "ann", "support"]
