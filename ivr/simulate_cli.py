"""`ivr simulate`: a terminal caller, interactive or scripted."""

from __future__ import annotations

import json

import click

from ivr.simulator import SimulatedCall, Turn, flask_transport, http_transport


def run_simulation(*, called: str | None, caller: str, url: str | None, script: str | None,
                   as_json: bool) -> int:
    """Walk one call; return 0 when it ends with a person, a dial, a hang-up or a voicemail."""
    from ivr.config import load_config

    config = load_config()
    if url:
        base, transport = url.rstrip("/"), http_transport()
    else:
        from ivr import create_app

        app = create_app({"PUBLIC_BASE_URL": "http://ivr.simulator"})
        base = "http://ivr.simulator"
        transport = flask_transport(app.test_client(), base)
        config = app.config
    if called is None:
        called = _first_number(config["IVR_FLOWS"])
    call = SimulatedCall(transport, base, config["TWILIO_AUTH_TOKEN"], caller=caller,
                         called=called, account_sid=config["TWILIO_ACCOUNT_SID"])
    show = _printer(as_json)
    show("dial", call.dial())
    actions = [a.strip() for a in script.split(",")] if script else None
    while call.turn and call.turn.waiting in ("gather", "queue", "dial", "record"):
        if actions is not None:
            if not actions:
                break
            action = actions.pop(0)
        else:
            action = click.prompt(_hint(call.turn), default="", show_default=False)
        if action in ("hangup", "q"):
            break
        try:
            show(action or "wait", _act(call, action))
        except RuntimeError as exc:
            click.echo(f"! {exc}", err=True)
            if actions is not None:
                return 2
    call.hang_up()
    return 0 if call.turn and call.turn.status == 200 else 1


def _act(call: SimulatedCall, action: str) -> Turn:
    if action in ("", "wait"):
        return call.wait()
    if action.startswith("say:"):
        return call.say(action[4:].strip())
    if action == "hold":
        return call.hold()
    if action == "record":
        return call.record()
    if action.startswith("dial:"):
        return call.dial_result(action[5:])
    return call.press(action)


def _hint(turn: Turn) -> str:
    return {
        "gather": "keys, 'say:words', or Enter to stay silent",
        "queue": "'hold' to hear the wait message, 'hangup' to leave",
        "dial": "'dial:completed' or 'dial:no-answer'",
        "record": "'record' to leave a message",
    }.get(turn.waiting, "")


def _printer(as_json: bool):
    def show(action: str, turn: Turn) -> None:
        if as_json:
            click.echo(json.dumps({"action": action, "said": turn.said, "played": turn.played,
                                   "waiting": turn.waiting, "queue": turn.queue,
                                   "dial": turn.dial_number, "status": turn.status},
                                  ensure_ascii=False))
            return
        click.secho(f"> {action}", fg="cyan")
        for text in turn.said:
            click.echo(f"  IVR: {text}")
        for audio in turn.played:
            click.echo(f"  (plays {audio})")
        if turn.waiting == "queue":
            click.secho(f"  [waiting for a person in queue '{turn.queue}']", fg="green")
        elif turn.waiting == "dial":
            click.secho(f"  [dialling {turn.dial_number}]", fg="green")
        elif turn.waiting in ("hangup", "error"):
            click.secho(f"  [{turn.waiting}, HTTP {turn.status}]", fg="yellow")

    return show


def _first_number(flows_path: str) -> str:
    from ivr.flows.loader import load_flows

    numbers = list(load_flows(flows_path).file.numbers)
    return numbers[0] if numbers else "+18005550100"
