"""`ivr agents`: manage the roster and presence from a terminal (same rules as the admin API)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import redis

from ivr.core.flows.lint_languages import used_languages
from ivr.core.flows.loader import load_flows
from ivr.errors import FlowError
from ivr.infra import agents as ag
from ivr.infra import runfile
from ivr.infra.agents.fields import AgentError
from ivr.infra.clock import clock_from
from ivr.infra.config import load_config
from ivr.infra.db import Database
from ivr.infra.redis_conn import connect

STATUSES = [s.value for s in ag.AgentStatus]


@contextmanager
def _backends(*, need_redis: bool) -> Iterator[tuple[Database, redis.Redis | None, dt.datetime]]:
    """The service's database, its Redis and its clock: from the environment, else from the
    `ivr serve` running in this directory (its run file)."""
    cfg = load_config(runfile.running_settings())
    db = Database(cfg["DATABASE_URL"])
    client = None
    try:
        db.create_schema()
        if cfg.get("REDIS_URL"):
            client = connect(cfg["REDIS_URL"], timeout=5)
        elif need_redis:
            # An embedded Valkey here would be a private one: the change would reach no server.
            raise click.UsageError(
                "REDIS_URL is not set and no `ivr serve` runs in this directory: presence "
                "lives in the service's Redis. Run this where `ivr serve` runs, or set "
                "REDIS_URL to your service's Redis."
            )
        yield db, client, clock_from(cfg)()
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis at REDIS_URL did not answer: {exc}") from None
    finally:
        if client is not None:
            client.close()
        db.dispose()


def _flow_languages(given: str | None) -> list[str] | None:
    """The languages of the service's flows file, to check `--languages` against; None when
    no languages were given or the file cannot be read (the service's own table is used)."""
    if given is None:
        return None
    path = load_config(runfile.running_settings())["IVR_FLOWS"]
    try:
        return list(used_languages(load_flows(path).file))
    except FlowError:
        click.echo(f"note: {path} could not be read: languages are checked against the "
                   "languages the service knows", err=True)
        return None


def _speaking(codes: list[str]) -> str:
    return f", speaking {','.join(codes)}" if codes else ""


LANGUAGES_HELP = ("Comma-separated flow language codes the agent speaks, first the one they "
                  "hear whispers in, e.g. hi,en.")


@click.group("agents")
def agents_group() -> None:
    """The people who take calls: roster, queues and presence."""


@agents_group.command("list")
@click.option("--queue", default=None, help="Only agents serving this queue.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(queue: str | None, as_json: bool) -> None:
    """Show every agent with their queues and live presence."""
    with _backends(need_redis=False) as (db, r, now):
        if r is not None:
            rows = [e.to_dict() for e in ag.list_agents(db, r, now, queue=queue)]
        else:
            rows = [{**a.to_dict(), "presence": None} for a in ag.roster(db, queue=queue)]
            click.echo("note: REDIS_URL is not set, so live presence is not shown", err=True)
        counts = None
        if queue and r is not None:
            counts = {"staffed": ag.staffed_count(r, queue, now),
                      "available": ag.available_count(r, queue, now)}
    if as_json:
        click.echo(json.dumps({"agents": rows, **(counts or {})}, indent=2))
        return
    if not rows:
        click.echo("no agents yet: `ivr agents add NAME --phone +1... --queues support`")
        return
    click.echo(f"{'id':>4}  {'name':<20} {'status':<10} {'address':<28} {'queues':<20} "
               "languages")
    for row in rows:
        status = row["presence"]["status"] if row["presence"] else "?"
        if not row["active"]:
            status += "*"
        # A blank languages column: the agent did not say (the flows' default language).
        click.echo(f"{row['id']:>4}  {row['name'][:20]:<20} {status:<10} "
                   f"{row['address'][:28]:<28} {','.join(row['queues']):<20} "
                   f"{','.join(row['languages'])}".rstrip())
    if any(not row["active"] for row in rows):
        click.echo("* deactivated")
    if counts:
        click.echo(f"queue {queue}: {counts['staffed']} staffed, {counts['available']} available")


@agents_group.command("add")
@click.argument("name")
@click.option("--phone", default=None, help="Phone number in E.164 form, e.g. +14155550123.")
@click.option("--sip", default=None, help="SIP URI, e.g. sip:ann@pbx.example.com.")
@click.option("--client", "client_identity", default=None, help="Twilio Client identity.")
@click.option("--queues", required=True, help="Comma-separated queue names, e.g. support,billing.")
@click.option("--wrap-up", "wrap_up", default=30, show_default=True, type=int,
              help="Seconds after each call before the next one.")
@click.option("--languages", default=None, help=LANGUAGES_HELP)
def add_command(name: str, phone: str | None, sip: str | None, client_identity: str | None,
                queues: str, wrap_up: int, languages: str | None) -> None:
    """Add an agent (offline until they or an admin set them available)."""
    given = [(k, v) for k, v in (("phone", phone), ("sip", sip), ("client", client_identity)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --phone, --sip or --client")
    kind, address = given[0]
    known = _flow_languages(languages)
    with _backends(need_redis=False) as (db, r, now):
        agent, token = ag.add_agent(db, r, name=name, kind=kind, address=address, queues=queues,
                                    wrap_up_seconds=wrap_up, languages=languages,
                                    known_languages=known, now=now)
    click.echo(f"added agent {agent.id}: {agent.name} ({agent.kind} {agent.address}) "
               f"serving {','.join(agent.queues)}{_speaking(agent.languages)}")
    click.echo(f"self-service token (shown once): {token}")


@agents_group.command("update")
@click.argument("agent")
@click.option("--name", default=None)
@click.option("--phone", default=None)
@click.option("--sip", default=None)
@click.option("--client", "client_identity", default=None)
@click.option("--queues", default=None, help="Comma-separated queue names (replaces the list).")
@click.option("--wrap-up", "wrap_up", default=None, type=int)
@click.option("--languages", default=None,
              help=LANGUAGES_HELP + " Replaces the list; \"\" clears it.")
@click.option("--active/--inactive", default=None, help="Inactive agents stay offline.")
def update_command(agent: str, name: str | None, phone: str | None, sip: str | None,
                   client_identity: str | None, queues: str | None, wrap_up: int | None,
                   languages: str | None, active: bool | None) -> None:
    """Change an agent's name, address, queues, languages, wrap-up time or active flag."""
    given = [(k, v) for k, v in (("phone", phone), ("sip", sip), ("client", client_identity)) if v]
    if len(given) > 1:
        raise click.UsageError("give at most one of --phone, --sip or --client")
    kind, address = given[0] if given else (None, None)
    known = _flow_languages(languages)
    with _backends(need_redis=True) as (db, r, now):
        found = ag.find_agent(db, agent)
        updated = ag.update_agent(db, r, found.id, name=name, kind=kind, address=address,
                                  queues=queues, wrap_up_seconds=wrap_up, active=active,
                                  languages=languages, known_languages=known, now=now)
    click.echo(f"updated agent {updated.id}: {updated.name} ({updated.kind} {updated.address}) "
               f"serving {','.join(updated.queues)}, wrap-up {updated.wrap_up_seconds}s"
               f"{_speaking(updated.languages)}")


@agents_group.command("remove")
@click.argument("agent")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove_command(agent: str, yes: bool) -> None:
    """Delete an agent and their presence history (`update --inactive` keeps the history)."""
    with _backends(need_redis=True) as (db, r, now):
        found = ag.find_agent(db, agent)
        if not yes:
            click.confirm(f"remove agent {found.id} ({found.name}) and their history?", abort=True)
        ag.remove_agent(db, r, found.id)
    click.echo(f"removed agent {found.id}: {found.name}")


@agents_group.command("token")
@click.argument("agent")
def token_command(agent: str) -> None:
    """Issue a new self-service token for an agent (AGENT is an id, a name or an address).

    It signs them in to the console (/console) and to /agents/me; their old token, and every
    console session made with it, stops working. It is printed once: pass it on privately.
    """
    with _backends(need_redis=False) as (db, _r, _now):
        found = ag.find_agent(db, agent)
        token = ag.rotate_token(db, found.id)
    click.echo(f"new self-service token for agent {found.id} ({found.name}), shown once: "
               f"{token}")
    click.echo("the old token no longer works")


@agents_group.command("status")
@click.argument("agent")
@click.argument("status", type=click.Choice(STATUSES))
def status_command(agent: str, status: str) -> None:
    """Set an agent's presence (AGENT is an id, a name or an address)."""
    with _backends(need_redis=True) as (db, r, now):
        found = ag.find_agent(db, agent)
        state = ag.set_presence(db, r, found.id, status, reason="cli", now=now)
    click.echo(f"agent {found.id} ({found.name}) is {state.status.value}")
