"""`ivr simulate`: a caller at the terminal, on the emulated phone network of `ivr serve`.

The call is placed on the service's Twilio emulator (its control API under `/_twilio`), so
everything that happens is what Twilio would do: the flows' webhooks, the hold queue's wait
music, the agent's phone ringing and their whisper, the bridge, the status callbacks. This
command only says what the caller does and prints what each side hears.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import click
import requests

from ivr.infra import runfile
from ivr.infra.clock import BadTime
from ivr.infra.config import load_config
from ivr.serve import EMULATOR_PREFIX, LocalService

TURN_LIMIT = 180.0  # seconds one action may take before the simulator gives up on the call


class NotEmulated(click.ClickException):
    """The server at --url uses real Twilio (or is not an `ivr serve`)."""


class EmulatorClient:
    """The emulator's control API, with the account's credentials."""

    def __init__(self, url: str, account_sid: str, auth_token: str) -> None:
        self.base = url.rstrip("/") + EMULATOR_PREFIX + "/_emulator"
        self.http = requests.Session()
        self.http.auth = (account_sid, auth_token)

    def info(self) -> dict:
        try:
            resp = self.http.get(self.base, timeout=5)
        except requests.RequestException as exc:
            raise click.ClickException(f"no service answers at {self.base}: {exc}") from None
        if resp.status_code == 401:
            raise click.ClickException(
                "the server's Twilio emulator refused these credentials: run `ivr simulate` "
                "in the directory where `ivr serve` runs (its run file holds them)")
        if resp.status_code != 200:
            raise NotEmulated(
                "this server does not emulate Twilio (it has Twilio credentials, or is not "
                "`ivr serve`): call its number from a phone instead")
        return resp.json()

    def dial_in(self, caller: str, called: str) -> str:
        resp = self.http.post(self.base + "/calls", json={"from": caller, "to": called},
                              timeout=5)
        if resp.status_code != 201:
            raise click.ClickException(f"the call could not be placed: {resp.json()['message']}")
        return resp.json()["sid"]

    def act(self, sid: str, action: str) -> None:
        self.http.post(f"{self.base}/calls/{sid}/act", json={"action": action}, timeout=5)

    def events(self, since: int, wait: float) -> list[dict]:
        resp = self.http.get(self.base + "/events", params={"since": since, "wait": wait},
                             timeout=wait + 10)
        return resp.json()["events"]


@dataclass
class Turn:
    """What happened between two of the caller's actions, in order."""

    action: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    waiting: str = ""  # gather | record | queue | hangup | error
    queue: str = ""
    bridged: bool = False

    def texts(self, *kinds: str) -> list[str]:
        return [text for kind, text in self.lines if kind in kinds]


class Simulation:
    """Follows one call's events on the emulated network.

    Other legs are shown while they concern this caller: the agent rung while the caller holds
    (their whisper, their key) and whoever is bridged with the caller.
    """

    def __init__(self, client: EmulatorClient, sid: str, since: int = 0) -> None:
        self.client, self.sid = client, sid
        self.seq = since
        self.queue = ""  # the queue the caller is holding in, if any
        self.ended = False
        self.waiting = ""
        self.partners: set[str] = set()

    def turn(self, action: str, *, hold: str = "") -> Turn:
        """Collect events until the call needs the caller again (or, with `hold`, until the
        next announcement or the bridge; 'hold:SECONDS' for that long)."""
        turn = Turn(action)
        deadline = time.monotonic() + TURN_LIMIT
        seconds = float(hold.split(":", 1)[1]) if hold.startswith("hold:") else None
        until = time.monotonic() + seconds if seconds is not None else None
        rounds = 0
        while time.monotonic() < deadline:
            if until is not None and time.monotonic() >= until:
                break
            for event in self.client.events(self.seq, wait=0.5):
                self.seq = event["seq"]
                rounds += self._apply(event, turn)
            if self.ended:
                turn.waiting = "hangup"
                break
            if self.waiting in ("gather", "record") and not self.queue:
                turn.waiting = self.waiting
                break
            if self.queue and until is None and rounds and (
                    not hold or turn.bridged or turn.texts("said")):
                turn.waiting = "queue"
                break
        else:
            turn.lines.append(("error", f"nothing happened for {TURN_LIMIT:.0f} s"))
            turn.waiting = "error"
        if not turn.waiting:
            turn.waiting = "queue" if self.queue else self.waiting or "gather"
        turn.queue = self.queue
        self.waiting = ""
        return turn

    def _apply(self, event: dict, turn: Turn) -> int:
        """Note one event; returns 1 when it ends a round of the caller's hold music."""
        kind, text = event["kind"], event["text"]
        detail = event.get("detail", {})
        if event["call"] != self.sid:
            if kind == "bridged" and detail.get("with_call") == self.sid:
                self.partners.add(event["call"])
                turn.bridged = True
                turn.lines.append(("other", f"bridged: you are talking with {event['to']}"))
            elif not self.queue and event["call"] not in self.partners:
                return 0  # another call on the network
            elif kind == "say":
                turn.lines.append(("other", f"{event['to']} hears: {text}"))
            elif kind == "pressed":
                turn.lines.append(("other", f"{event['to']} pressed {text}"))
            elif kind == "ringing" and event["direction"] == "outbound-api":
                turn.lines.append(("other", f"ringing {text}"))
            elif kind == "unbridged" and detail.get("with_call") == self.sid:
                turn.lines.append(("other", f"{event['to']} hung up"))
            return 0
        if kind == "say":
            turn.lines.append(("said", text))
        elif kind == "play":
            turn.lines.append(("played", text))
        elif kind == "gather":
            if detail.get("in_queue"):
                return 1
            self.waiting = "gather"
        elif kind == "enqueued":
            self.queue = text
        elif kind == "left-queue":
            self.queue = ""
        elif kind == "recording":
            self.waiting = "record"
        elif kind == "bridged":
            self.partners.add(detail.get("with_call", ""))
            turn.bridged = True
            turn.lines.append(("other", f"bridged: you are talking with {detail.get('to')}"))
        elif kind == "unheard":
            turn.lines.append(("error", f"not heard: {text!r} ({detail.get('why')})"))
        elif kind == "error":
            turn.lines.append(("error", text))
        elif kind == "ended":
            self.ended = True
        return 0


def run_simulation(*, called: str | None, caller: str, url: str | None, script: str | None,
                   as_json: bool, at: str | None = None) -> int:
    """Walk one call; return 0 when it went through, 1 on errors, 2 for a script that does
    not fit the call."""
    if url and at:
        raise click.UsageError("--at sets the clock of the service this command starts; "
                               "start a server on another clock with `ivr serve --at`")
    service = None
    running = runfile.read()
    if url is None and running is not None and not at:
        url = running["url"]  # the `ivr serve` of this directory
    if url is None:
        # A service of its own for this one call, on a database and a Valkey of its own, so
        # it can never touch the callbacks or agents of a service running here.
        sandbox = tempfile.mkdtemp(prefix="ivr-simulate-")
        service = LocalService("127.0.0.1", 0, at=at, announce=False, overrides={
            "DATABASE_URL": f"sqlite:///{sandbox}/simulate.sqlite3", "REDIS_URL": None})
        try:
            service.start()
        except BadTime as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from None
        url = service.local_url
    try:
        config = service.config if service else load_config(runfile.running_settings())
        client = EmulatorClient(url, config["TWILIO_ACCOUNT_SID"],
                                config.get("TWILIO_AUTH_TOKEN") or "")
        info = client.info()
        called = called or (info["numbers"][0] if info["numbers"] else "")
        sim = Simulation(client, client.dial_in(caller, called), since=info["last_event"])
        return _walk(sim, [a.strip() for a in script.split(",")] if script else None,
                     _printer(as_json), "dial")
    finally:
        if service is not None:
            service.stop()
            shutil.rmtree(sandbox, ignore_errors=True)


def _walk(sim: Simulation, actions: list[str] | None, show, first: str) -> int:
    turn = sim.turn(first)
    show(turn)
    failed = bool(turn.texts("error"))
    while not sim.ended:
        if actions is not None:
            if not actions:
                break
            action = actions.pop(0)
        else:
            action = click.prompt(_hint(turn), default="", show_default=False).strip()
        if action in ("hangup", "q"):
            break
        if turn.waiting == "queue" and (action in ("", "hold") or action.startswith("hold:")):
            turn = sim.turn(action or "hold", hold=action or "hold")
        elif action.startswith("hold"):
            click.echo(f"! not holding in a queue (the call waits for {turn.waiting})", err=True)
            if actions is not None:
                return 2
            continue
        else:
            sim.client.act(sim.sid, "7" if action == "record" else action or "wait")
            turn = sim.turn(action or "wait")
        show(turn)
        failed = failed or bool(turn.texts("error"))
    if not sim.ended:
        # The caller hangs up; the network still plays out what follows (status callbacks).
        sim.client.act(sim.sid, "hangup")
        show(sim.turn("hangup"), final=True)
    return 1 if failed else 0


def _hint(turn: Turn) -> str:
    return {
        "gather": "keys, 'say:words', Enter for silence, 'hangup'",
        "queue": "Enter to keep holding, a key (1: call me back), 'hangup' to leave",
        "record": "'record' to leave a message",
    }.get(turn.waiting, "")


def _printer(as_json: bool):
    styles = {"said": ("  IVR: {}", None), "played": ("  (plays {})", None),
              "other": ("  {}", "magenta"), "error": ("  ! {}", "red")}

    def show(turn: Turn, final: bool = False) -> None:
        if as_json:
            if final:
                return  # JSON lists the caller's turns; hanging up is not one

            click.echo(json.dumps({"action": turn.action, "said": turn.texts("said"),
                                   "played": turn.texts("played"), "others": turn.texts("other"),
                                   "errors": turn.texts("error"), "waiting": turn.waiting,
                                   "queue": turn.queue, "bridged": turn.bridged},
                                  ensure_ascii=False))
            return
        click.secho(f"> {turn.action}", fg="cyan")
        for kind, text in turn.lines:
            pattern, colour = styles[kind]
            click.secho(pattern.format(text), fg=colour)
        if turn.waiting == "queue":
            click.secho(f"  [holding for a person in queue '{turn.queue}']", fg="green")
        elif turn.waiting == "hangup":
            click.secho("  [the call has ended]", fg="yellow")
    return show
