"""The flow language: what `flows.yaml` may say, as pydantic models.

A file holds shared `defaults`, the `numbers` that route a dialled number to a flow, named
`hours` calendars, named person `queues`, and the `flows` themselves. A flow is a set of named
nodes; each node has a `type` and names the nodes it leads to.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ivr.core.flows.model import Model
from ivr.core.flows.timetable import Hours

NODE_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
DIGIT = r"^[0-9*#]$"


# --- prompts -------------------------------------------------------------------------------


class Say(Model):
    say: str
    # Spoken in this flow language's voice, not the call's (a language choice menu says
    # "for Hindi, press 2" in Hindi).
    language: str | None = None


class Play(Model):
    play: str  # URL of an audio file


class Pause(Model):
    pause: int = Field(ge=1, le=30)


PromptPart = str | Say | Play | Pause
PromptValue = str | list[PromptPart]
# A prompt is text, a list of parts, or a mapping from language code to either.
Prompt = PromptValue | dict[str, PromptValue]
# Spoken phrases for an option: one list, or a list per language.
Phrases = list[str] | dict[str, list[str]]


class Language(Model):
    """How to speak one flow language with Twilio's <Say>, and which Vosk model hears it."""

    # <Say language=...> and <Say voice=...>, e.g. hi-IN and Polly.Aditi; unset, the service's
    # defaults for the language code (ivr.core.i18n.languages).
    say: str | None = None
    voice: str | None = None
    speech_model: str | None = None  # path or installed package name of a Vosk model


class Retry(Model):
    """How many times to re-prompt, and what to say first."""

    retries: int = Field(default=2, ge=0, le=5)
    prompt: Prompt | None = None


class NoInput(Retry):
    timeout: int = Field(default=5, ge=1, le=60)  # seconds of silence that count as no input
    prompt: Prompt | None = None  # unset: the catalogue's retry.no_input


class InvalidInput(Retry):
    prompt: Prompt | None = None  # unset: the catalogue's retry.invalid


class Operator(Model):
    """The escape to a person, accepted at every node."""

    enabled: bool = True
    digit: str = Field(default="0", pattern=DIGIT)
    # In digit collection a real 0 can be part of the answer, so the escape there is this key.
    collect_digit: str = Field(default="*", pattern=DIGIT)
    phrases: Phrases = ["agent", "person", "representative", "operator"]
    queue: str = "support"
    # Said before joining the queue; unset: the catalogue's operator.connecting.
    prompt: Prompt | None = None


class Defaults(Model):
    language: str = "en"
    languages: dict[str, Language] = {"en": Language()}
    no_input: NoInput = NoInput()
    invalid_input: InvalidInput = InvalidInput()
    operator: Operator | None = Operator()
    # Said when the caller ends up on a callback offer because nobody can answer now; unset:
    # the catalogue's closed.away.
    closed_prompt: Prompt | None = None
    # Any sentence the service composes, per language: {"hi": {"hold.next": "..."}} (the keys
    # are those of ivr/core/i18n/locale/en/voice.po).
    phrases: dict[str, dict[str, str]] = {}


# --- queues --------------------------------------------------------------------------------


class ServiceLevel(Model):
    """The queue's answer target: `goal` percent of callers answered within `seconds`."""

    seconds: int = Field(default=20, ge=1, le=3600)
    goal: int = Field(default=80, ge=1, le=100)


class Queue(Model):
    """A line of callers waiting for a person."""

    hours: str | None = None  # name of an `hours` calendar; None means always open
    # How the queue is named to agents, per language (default: its name).
    label: str | dict[str, str] | None = None
    # Seconds a caller waits for an agent who speaks their language before any agent is rung.
    language_wait: int = Field(default=60, ge=0)
    hold_music: str | None = None  # URL; None plays Twilio's default hold music
    announce_every: int = Field(default=30, ge=10, le=600)  # seconds between announcements
    offer_callback_after: int = Field(default=120, ge=0)  # offer when the estimate exceeds this
    max_wait: int = Field(default=900, ge=30)  # seconds; then the caller is offered a callback
    # What a caller gets when the queue is closed or nobody is staffed.
    when_closed: Literal["callback", "voicemail"] = "callback"
    default_handle_seconds: int = Field(default=240, ge=10)  # cold-start estimate
    # What the wallboard and `ivr report` measure the queue against (80/20 by default).
    service_level: ServiceLevel = ServiceLevel()


# --- nodes ---------------------------------------------------------------------------------

NodeName = Annotated[str, Field(pattern=NODE_NAME)]
# As agents' queue names: letters, digits, '_' and '-' (a '.' names a language's Twilio queue).
QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class NodeBase(Model):
    prompt: Prompt | None = None
    # Per-node overrides of the shared defaults.
    no_input: NoInput | None = None
    invalid_input: InvalidInput | None = None
    # Where the caller goes when retries run out; default is the operator escape.
    on_fail: NodeName | None = None


class MessageNode(NodeBase):
    type: Literal["message"]
    prompt: Prompt
    next: NodeName


class Option(Model):
    digit: str = Field(pattern=DIGIT)
    say: Phrases = []
    goto: NodeName
    # Variables set when this option is chosen, e.g. {language: ko}.
    set: dict[str, str] = {}

    @field_validator("digit", mode="before")
    @classmethod
    def _digit_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class MenuNode(NodeBase):
    type: Literal["menu"]
    prompt: Prompt
    options: list[Option] = Field(min_length=1)


class CollectNode(NodeBase):
    type: Literal["collect"]
    prompt: Prompt
    var: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    min_digits: int = Field(default=1, ge=1, le=30)
    max_digits: int = Field(default=10, ge=1, le=30)
    finish_on_key: str = Field(default="#", pattern=DIGIT)
    next: NodeName

    @model_validator(mode="after")
    def _lengths(self) -> CollectNode:
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits is larger than max_digits")
        return self


class HoursNode(NodeBase):
    type: Literal["hours"]
    hours: str
    open: NodeName
    closed: NodeName
    holiday: NodeName | None = None  # default: same as closed


class Condition(Model):
    """One test; exactly one of its fields is set."""

    var: str | None = None  # with equals / one_of / matches / present
    equals: str | None = None
    one_of: list[str] | None = None
    matches: str | None = None  # regular expression, full match
    present: bool | None = None
    returning_caller: bool | None = None  # has this caller ID called before?
    caller_id: list[str] | None = None  # E.164 numbers
    caller_prefix: str | None = None  # e.g. '+1' or '+8210'

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        var_tests = [self.equals, self.one_of, self.matches, self.present]
        caller_tests = [self.returning_caller, self.caller_id, self.caller_prefix]
        n_var = sum(t is not None for t in var_tests)
        n_caller = sum(t is not None for t in caller_tests)
        if self.var is not None and n_var != 1:
            raise ValueError(
                "a 'var' condition needs exactly one of equals, one_of, matches, present"
            )
        if self.var is None and (n_var or n_caller != 1):
            raise ValueError(
                "a condition tests either a 'var' or exactly one of "
                "returning_caller, caller_id, caller_prefix"
            )
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return self


class Rule(Model):
    when: Condition
    goto: NodeName


class BranchNode(NodeBase):
    type: Literal["branch"]
    rules: list[Rule] = Field(min_length=1)
    otherwise: NodeName


class QueueNode(NodeBase):
    """Hand the caller to a person: join a hold queue."""

    type: Literal["queue"]
    queue: str


class DialNode(NodeBase):
    type: Literal["dial"]
    number: str
    timeout: int = Field(default=20, ge=5, le=120)
    caller_id: str | None = None
    # After an unanswered dial; default is the operator escape.
    on_fail: NodeName | None = None


class CallbackNode(NodeBase):
    """Offer to call the caller back, at their caller ID or another number they enter."""

    type: Literal["callback"]
    queue: str | None = None  # default: the operator queue
    next: NodeName | None = None  # after the request is taken; default: thank and hang up


class VoicemailNode(NodeBase):
    type: Literal["voicemail"]
    prompt: Prompt
    max_length: int = Field(default=120, ge=5, le=3600)
    next: NodeName | None = None  # default: thank and hang up


class GotoFlowNode(NodeBase):
    type: Literal["goto_flow"]
    flow: str


class HangupNode(NodeBase):
    type: Literal["hangup"]


Node = Annotated[
    MessageNode
    | MenuNode
    | CollectNode
    | HoursNode
    | BranchNode
    | QueueNode
    | DialNode
    | CallbackNode
    | VoicemailNode
    | GotoFlowNode
    | HangupNode,
    Field(discriminator="type"),
]

NODE_TYPES = (
    "message",
    "menu",
    "collect",
    "hours",
    "branch",
    "queue",
    "dial",
    "callback",
    "voicemail",
    "goto_flow",
    "hangup",
)


class Flow(Model):
    start: NodeName
    description: str | None = None
    language: str | None = None  # overrides defaults.language for this flow
    nodes: dict[NodeName, Node] = Field(min_length=1)


class FlowFile(Model):
    """The whole `flows.yaml`."""

    version: Literal[1] = 1
    defaults: Defaults = Defaults()
    numbers: dict[str, str] = {}  # dialled number (E.164) -> flow name
    default_flow: str | None = None  # for numbers not listed
    hours: dict[str, Hours] = {}
    queues: dict[QueueName, Queue] = {"support": Queue()}
    flows: dict[str, Flow] = Field(min_length=1)

    def flow_for_number(self, dialled: str) -> str | None:
        """The flow a call to `dialled` starts in, or None when nothing routes it."""
        return self.numbers.get(dialled) or self.default_flow or (
            next(iter(self.flows)) if len(self.flows) == 1 else None
        )


def prompt_texts(prompt: Prompt | None) -> list[str]:
    """Every piece of spoken text in a prompt, across languages (for linting)."""
    if prompt is None:
        return []
    if isinstance(prompt, dict):
        return [t for value in prompt.values() for t in prompt_texts(value)]
    if isinstance(prompt, str):
        return [prompt]
    out = []
    for part in prompt:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Say):
            out.append(part.say)
    return out


def phrases_for(phrases: Phrases, language: str) -> list[str]:
    """The spoken phrases for `language` (a plain list applies to every language)."""
    if isinstance(phrases, dict):
        return list(phrases.get(language, []))
    return list(phrases)


def targets(node: Node) -> list[tuple[str, str]]:
    """(field path, node name) for every node this node can lead to, in order."""
    out: list[tuple[str, str]] = []
    match node:
        case MessageNode() | CollectNode():
            out.append(("next", node.next))
        case MenuNode():
            out += [(f"options[{i}].goto", o.goto) for i, o in enumerate(node.options)]
        case HoursNode():
            out += [("open", node.open), ("closed", node.closed)]
            if node.holiday:
                out.append(("holiday", node.holiday))
        case BranchNode():
            out += [(f"rules[{i}].goto", r.goto) for i, r in enumerate(node.rules)]
            out.append(("otherwise", node.otherwise))
        case CallbackNode() | VoicemailNode():
            if node.next:
                out.append(("next", node.next))
    if node.on_fail:
        out.append(("on_fail", node.on_fail))
    return out
