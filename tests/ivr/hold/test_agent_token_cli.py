"""`ivr agents token`: a new self-service token, printed once; the old one stops working."""

from __future__ import annotations

from click.testing import CliRunner

from ivr.commands.agents import agents_group
from ivr.infra import agents as ag


def run(database_url: str, redis_url: str, *args: str):
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    return CliRunner().invoke(agents_group, list(args), env=env)


def test_token_issues_a_new_token_and_the_old_one_stops_working(database_url, redis_url,
                                                                 redis_client, db):
    added = run(database_url, redis_url, "add", "Ann Lee", "--phone", "+14155550100",
                "--queues", "support")
    assert added.exit_code == 0, added.output
    old = added.output.rsplit(": ", 1)[1].strip()

    result = run(database_url, redis_url, "token", "Ann Lee")

    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first.startswith("new self-service token for agent 1 (Ann Lee), shown once: ")
    assert second == "the old token no longer works"
    new = first.rsplit(": ", 1)[1]
    assert new != old and len(new) >= 20
    assert ag.agent_by_token(db, new).name == "Ann Lee"
    assert ag.agent_by_token(db, old) is None
    # By id and by address too; each call issues another token.
    again = run(database_url, redis_url, "token", "+14155550100")
    assert again.exit_code == 0 and again.output.split(": ", 1)[1].split()[0] != new
    assert ag.agent_by_token(db, new) is None


def test_token_for_an_unknown_agent_is_a_plain_error(database_url, redis_url, redis_client,
                                                     db):
    result = run(database_url, redis_url, "token", "nobody")
    assert result.exit_code == 1
    assert "no agent with id, name or address 'nobody'" in result.output
