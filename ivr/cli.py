"""The `ivr` command line: serve, worker, flows, simulate, speech, staffing, agents, report."""

from __future__ import annotations

import sys

import click

from ivr.commands.agents import agents_group
from ivr.commands.flows import flows_group
from ivr.commands.report import report_command
from ivr.commands.simulate import run_simulation
from ivr.commands.speech import speech_group
from ivr.commands.staffing import staffing_command
from ivr.emulator import ChaosSettings
from ivr.serve import run
from ivr.worker import worker_command


@click.group()
def main() -> None:
    """Self-hosted IVR and click-to-call on Twilio webhooks."""


main.add_command(flows_group)


AT_HELP = ("Run on a clock that starts at this time (e.g. '2026-12-02 12:00', read in the "
           "shop's time zone, or an ISO time with an offset) and runs on from there.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the RQ worker in this process.")
@click.option("--at", default=None, help=AT_HELP)
@click.option("--chaos", default=None, metavar="SPEC",
              help="Testing: the emulated Twilio delivers late, twice and out of order, "
                   "seeded: 'seed=7,delay=0.5,repeat=0.2,drop=0.05'.")
def serve(host: str, port: int, no_worker: bool, at: str | None, chaos: str | None) -> None:
    """Run the whole service on embedded defaults (SQLite, Valkey, worker, emulated Twilio)."""
    try:
        settings = ChaosSettings.parse(chaos) if chaos else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--chaos") from None
    run(host=host, port=port, with_worker=not no_worker, at=at, chaos=settings)


main.add_command(worker_command)


@main.command()
@click.option("--number", "called", default=None,
              help="Number to dial (default: the first number the service answers).")
@click.option("--from", "caller", default="+14155550123", show_default=True)
@click.option("--url", default=None,
              help="A running `ivr serve` (default: the one running in this directory, else "
                   "the service started in this process).")
@click.option("--script", default=None,
              help="Comma-separated actions: digits, 'say:words', 'wait', 'hold', 'hold:SECONDS', "
                   "'record', 'hangup'. Without it the call is interactive.")
@click.option("--json", "as_json", is_flag=True, help="Print each turn as JSON.")
@click.option("--at", default=None, help=AT_HELP + " Only without --url.")
def simulate(called: str | None, caller: str, url: str | None, script: str | None,
             as_json: bool, at: str | None) -> None:
    """Call the service from the terminal: its emulated Twilio rings the flows, the agents and
    the callbacks, and you hear what each side hears."""
    sys.exit(run_simulation(called=called, caller=caller, url=url, script=script,
                            as_json=as_json, at=at))


main.add_command(speech_group)
main.add_command(staffing_command)
main.add_command(agents_group)
main.add_command(report_command)


if __name__ == "__main__":
    main()
