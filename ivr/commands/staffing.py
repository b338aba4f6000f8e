"""`ivr staffing`: how many agents a queue needs for a service level (Erlang C)."""

from __future__ import annotations

import json

import click

from ivr.core.waits.staffing import StaffingError, required_agents


@click.command("staffing")
@click.option("--calls-per-hour", type=click.FloatRange(min=0), required=True,
              help="Expected calls arriving per hour.")
@click.option("--handle-seconds", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Average handle time per call, in seconds.")
@click.option("--answer-within", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Service-level threshold: answered within this many seconds.")
@click.option("--target", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.8, show_default=True,
              help="Share of calls to answer within the threshold, e.g. 0.8.")
def staffing_command(
    calls_per_hour: float, handle_seconds: float, answer_within: float, target: float
) -> None:
    """Agents needed for a service level (Erlang C); prints JSON."""
    try:
        result = required_agents(calls_per_hour, handle_seconds, answer_within, target)
    except StaffingError as exc:
        raise click.UsageError(str(exc)) from exc
    out = result.to_dict()
    out["service_level"] = round(result.service_level, 4)
    out["asa_seconds"] = round(result.asa_seconds, 2)
    out["probability_wait"] = round(result.probability_wait, 4)
    out["occupancy"] = round(result.occupancy, 4)
    out["traffic_erlangs"] = round(result.traffic_erlangs, 4)
    click.echo(json.dumps(out))
