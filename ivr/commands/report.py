"""`ivr report`: how the hold queues did, from the service's database."""

from __future__ import annotations

import datetime as dt
import json

import click

from ivr.hold.report import render_text, summarize
from ivr.infra import runfile
from ivr.infra.clock import clock_from
from ivr.infra.config import load_config
from ivr.infra.db import Database


@click.command("report")
@click.option("--days", default=7.0, show_default=True, type=float,
              help="Report on visits that ended in the last N days.")
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--answer-within", default=20.0, show_default=True, type=float,
              help="Service-level threshold in seconds.")
@click.option("--database-url", default=None, envvar="DATABASE_URL",
              help="Database to read (default: the service's DATABASE_URL).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def report_command(days: float, queue: str | None, answer_within: float,
                   database_url: str | None, as_json: bool) -> None:
    """Service level, waits, abandonment and estimate accuracy of the hold queues."""
    # The service running here (if any) decides the database and what "now" is.
    cfg = load_config(runfile.running_settings())
    db = Database(database_url or cfg["DATABASE_URL"])
    try:
        db.create_schema()  # a fresh database reports zeros rather than failing
        until = clock_from(cfg)()
        report = summarize(db, since=until - dt.timedelta(days=days), until=until, queue=queue,
                           answer_within=answer_within)
    finally:
        db.dispose()
    click.echo(json.dumps(report, indent=2) if as_json else render_text(report))
