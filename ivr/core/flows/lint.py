"""Checks a schema-valid flows file can still fail: wrong names, traps, a person out of reach."""

from __future__ import annotations

import re

from ivr.core.flows import crossflow, lint_languages
from ivr.core.flows.problem import Problem, Severity, did_you_mean, format_path
from ivr.core.flows.schema import (
    BranchNode,
    CallbackNode,
    CollectNode,
    DialNode,
    Flow,
    FlowFile,
    GotoFlowNode,
    HangupNode,
    HoursNode,
    MenuNode,
    Operator,
    Phrases,
    Prompt,
    QueueNode,
    phrases_for,
    prompt_texts,
    targets,
)
from ivr.core.flows.source import Path, SourceMap
from ivr.core.flows.walk import (
    HANDS_OFF,
    INSTANT,
    edges,
    field_path,
    is_cycle,
    reachable,
    strongly_connected,
)
from ivr.core.i18n import numbers

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
KEY_WORDS = {"0": "zero", "*": "star", "#": "pound"}
# How prompts in other languages name the keys: mostly the English word in their own script.
# A digit is also named by the language's own number word (numbers.digits).
SPOKEN_KEYS = {
    "0": {"ta": ["பூஜ்ஜிய"]},  # the stem: Tamil inflects the word (பூஜ்ஜியத்தை அழுத்தவும்)
    "*": {"hi": ["स्टार", "तारा"], "bn": ["স্টার", "তারা"], "ta": ["ஸ்டார்", "நட்சத்திர"],
          "ko": ["별표"]},
    "#": {"en": ["hash"], "hi": ["हैश", "पाउंड"], "bn": ["হ্যাশ", "পাউন্ড"],
          "ta": ["ஹாஷ்", "பவுண்ட்"], "ko": ["우물", "샵"]},
}


def lint(
    flowfile: FlowFile,
    lines: SourceMap,
    filename: str = "flows.yaml",
    removed: frozenset[Path] = frozenset(),
) -> list[Problem]:
    """Every problem the schema alone cannot see, errors and warnings, in the order found.

    `removed` names the entries (('flows', f, 'nodes', n), ('queues', q), ...) that were cut out
    because the schema rejected them: references to them are not reported again, and flows
    missing a node skip the path checks, which would be guesses.
    """
    return [
        *_Linter(flowfile, lines, filename, removed).run(),
        *crossflow.problems(flowfile, lines, filename),
        *lint_languages.problems(flowfile, lines, filename),
    ]


def mentions_key(text: str, key: str, language: str = "en") -> bool:
    """Does `text` tell the caller to press `key` ('0', '*', ...), as a symbol or a word
    (English's, or `language`'s)?"""
    symbol = rf"(?<!\d){re.escape(key)}(?!\d)" if key.isdigit() else re.escape(key)
    word = KEY_WORDS.get(key)
    pattern = symbol + (rf"|\b{word}\b" if word else "")
    words = SPOKEN_KEYS.get(key, {}).get(numbers.base(language), [])
    if key.isdigit():
        words = [*words, numbers.digits(language, key)]
    return re.search(pattern, text, re.IGNORECASE) is not None or any(
        mentions_phrase(text, w) for w in words)


def mentions_phrase(text: str, phrase: str) -> bool:
    """Does `text` contain the spoken `phrase` (whole words for Latin text)?"""
    if phrase.isascii():
        return re.search(rf"\b{re.escape(phrase)}\b", text, re.IGNORECASE) is not None
    return phrase.casefold() in text.casefold()


def _normal(phrase: str) -> str:
    return " ".join(phrase.casefold().split())


class _Linter:
    def __init__(
        self, flowfile: FlowFile, lines: SourceMap, filename: str, removed: frozenset[Path]
    ) -> None:
        self.ff = flowfile
        self.removed = removed
        self.lines = lines
        self.filename = filename
        self.problems: list[Problem] = []
        op = flowfile.defaults.operator
        self.operator: Operator | None = op if op is not None and op.enabled else None
        self.languages = list(flowfile.defaults.languages)

    def add(self, path: Path, message: str, severity: Severity = Severity.ERROR) -> None:
        self.problems.append(
            Problem(self.filename, self.lines.line(path), format_path(path), message, severity)
        )

    def warn(self, path: Path, message: str) -> None:
        self.add(path, message, Severity.WARNING)

    def run(self) -> list[Problem]:
        self._operator()
        self._routing()
        for name, flow in self.ff.flows.items():
            self._flow(name, flow)
        return self.problems

    # --- the file as a whole ----------------------------------------------------------------

    def _operator(self) -> None:
        op = self.ff.defaults.operator
        path: Path = ("defaults", "operator")
        if op is None:
            self.add(
                path,
                "the operator escape is missing: callers must always be able to "
                "reach a person (give it a digit, phrases and a queue)",
            )
            return
        if not op.enabled:
            self.add(
                path + ("enabled",),
                "the operator escape is disabled: callers must always be able to reach a person",
            )
        self._queue(op.queue, path + ("queue",))
        if op.digit == op.collect_digit:
            self.add(
                path + ("collect_digit",),
                f"'{op.collect_digit}' is also the operator digit: "
                "in number entry the escape needs a key that is not a digit, like '*'",
            )

    def _queue(self, queue: str, path: Path) -> None:
        if queue not in self.ff.queues and ("queues", queue) not in self.removed:
            self.add(path, f"unknown queue '{queue}'{did_you_mean(queue, self.ff.queues)}")

    def _hours(self, hours: str, path: Path) -> None:
        if hours not in self.ff.hours and ("hours", hours) not in self.removed:
            self.add(path, f"unknown hours '{hours}'{did_you_mean(hours, self.ff.hours)}")

    def _flow_ref(self, flow: str, path: Path) -> None:
        if flow not in self.ff.flows and ("flows", flow) not in self.removed:
            self.add(path, f"unknown flow '{flow}'{did_you_mean(flow, self.ff.flows)}")

    def _number(self, number: str, path: Path) -> None:
        if not E164.match(number):
            self.add(path, f"'{number}' is not an E.164 number (write it like +18005550100)")

    def _routing(self) -> None:
        for number, flow in self.ff.numbers.items():
            self._number(number, ("numbers", number))
            self._flow_ref(flow, ("numbers", number))
        if self.ff.default_flow is not None:
            self._flow_ref(self.ff.default_flow, ("default_flow",))
        for name, queue in self.ff.queues.items():
            if queue.hours is not None:
                self._hours(queue.hours, ("queues", name, "hours"))
        used = set(self.ff.numbers.values()) | {self.ff.default_flow}
        used |= {
            n.flow
            for f in self.ff.flows.values()
            for n in f.nodes.values()
            if isinstance(n, GotoFlowNode)
        }
        if len(self.ff.flows) > 1 and not self.removed:
            for name in self.ff.flows:
                if name not in used:
                    self.warn(
                        ("flows", name),
                        f"flow '{name}' is never used: no number, "
                        "default_flow or goto_flow leads to it",
                    )

    # --- one flow ---------------------------------------------------------------------------

    def _flow(self, fname: str, flow: Flow) -> None:
        base: Path = ("flows", fname)
        language = flow.language or self.ff.defaults.language
        if flow.start not in flow.nodes and base + ("nodes", flow.start) not in self.removed:
            self.add(
                base + ("start",),
                f"unknown node '{flow.start}'{did_you_mean(flow.start, flow.nodes)}",
            )
        for nname, node in flow.nodes.items():
            path = base + ("nodes", nname)
            for field, target in targets(node):
                where = path + field_path(field)
                if ("flows", fname, "nodes", target) in self.removed:
                    pass
                elif target not in flow.nodes:
                    self.add(where, f"unknown node '{target}'{did_you_mean(target, flow.nodes)}")
                elif field == "on_fail" and isinstance(flow.nodes[target], HangupNode):
                    self.add(
                        where,
                        f"'{target}' hangs up: a caller whose input keeps failing "
                        "must reach a person or a callback, never a hang-up",
                    )
            match node:
                case QueueNode():
                    self._queue(node.queue, path + ("queue",))
                case CallbackNode() if node.queue is not None:
                    self._queue(node.queue, path + ("queue",))
                case HoursNode():
                    self._hours(node.hours, path + ("hours",))
                case GotoFlowNode():
                    self._flow_ref(node.flow, path + ("flow",))
                case DialNode():
                    self._number(node.number, path + ("number",))
                    if node.caller_id is not None:
                        self._number(node.caller_id, path + ("caller_id",))
                case BranchNode():
                    self._branch(node, path)
                case MenuNode():
                    self._menu(node, path, language)
                case CollectNode():
                    self._collect(node, path, language)
        if not any(r[:3] == ("flows", fname, "nodes") for r in self.removed):
            self._paths(base, flow)

    def _branch(self, node: BranchNode, path: Path) -> None:
        for i, rule in enumerate(node.rules):
            when = path + ("rules", i, "when")
            for j, number in enumerate(rule.when.caller_id or []):
                self._number(number, when + ("caller_id", j))
            prefix = rule.when.caller_prefix
            if prefix is not None and not re.fullmatch(r"\+\d{1,14}", prefix):
                self.add(
                    when + ("caller_prefix",),
                    f"'{prefix}' is not a number prefix (write it like +1 or +8210)",
                )

    def _menu(self, node: MenuNode, path: Path, language: str) -> None:
        op = self.operator
        digits: dict[str, int] = {}
        phrases: dict[tuple[str, str], int] = {}
        for i, option in enumerate(node.options):
            where = path + ("options", i)
            if op is not None and option.digit == op.digit:
                self.add(
                    where + ("digit",),
                    f"digit {option.digit} is the operator escape "
                    "(defaults.operator.digit): choose another digit",
                )
            elif option.digit in digits:
                self.add(
                    where + ("digit",),
                    f"digit {option.digit} is already used by options[{digits[option.digit]}]",
                )
            digits.setdefault(option.digit, i)
            reported: set[str] = set()
            for lang in self._option_languages(option.say):
                for phrase in map(_normal, phrases_for(option.say, lang)):
                    if phrase in reported:
                        continue
                    if op is not None and phrase in map(_normal, phrases_for(op.phrases, lang)):
                        self.add(
                            where + ("say",),
                            f"phrase '{phrase}' is an operator phrase (it always reaches a person)",
                        )
                        reported.add(phrase)
                    elif phrases.get((lang, phrase), i) != i:
                        self.add(
                            where + ("say",),
                            f"phrase '{phrase}' is already used by "
                            f"options[{phrases[(lang, phrase)]}]",
                        )
                        reported.add(phrase)
                    phrases.setdefault((lang, phrase), i)
        if op is not None:
            self._tells_escape(node.prompt, path, language, op.digit)

    def _option_languages(self, say: Phrases) -> list[str]:
        return list(say) if isinstance(say, dict) else self.languages

    def _collect(self, node: CollectNode, path: Path, language: str) -> None:
        op = self.operator
        if op is None:
            return
        if node.finish_on_key == op.collect_digit:
            self.add(
                path + ("finish_on_key",),
                f"'{node.finish_on_key}' is the operator escape "
                "in number entry (defaults.operator.collect_digit): choose another key",
            )
        self._tells_escape(node.prompt, path, language, op.collect_digit)

    def _tells_escape(self, prompt: Prompt, path: Path, language: str, key: str) -> None:
        """Warn when a prompt gives neither the escape key nor an operator phrase."""
        assert self.operator is not None
        per_language = prompt if isinstance(prompt, dict) else {language: prompt}
        for lang, value in per_language.items():
            text = " ".join(prompt_texts(value))
            if not text.strip():
                continue  # recorded audio only: we cannot read it
            phrases = phrases_for(self.operator.phrases, lang)
            if mentions_key(text, key, lang) or any(mentions_phrase(text, p) for p in phrases):
                continue
            where = path + ("prompt",) + ((lang,) if isinstance(prompt, dict) else ())
            key_text = f"press {KEY_WORDS.get(key, key) if key in '*#' else key}"
            say = f" or say '{phrases[0]}'" if phrases else ""
            self.warn(
                where,
                f"the prompt never tells the caller how to reach a person (add '{key_text}'{say})",
            )

    def _paths(self, base: Path, flow: Flow) -> None:
        """Unreachable nodes, and loops the caller cannot leave."""
        graph = edges(flow)
        if flow.start in flow.nodes:
            seen = reachable(graph, flow.start)
            for name in flow.nodes:
                if name not in seen:
                    self.warn(
                        base + ("nodes", name),
                        f"unreachable node '{name}': nothing leads to it from start '{flow.start}'",
                    )
        trapped: set[str] = set()
        for component in strongly_connected(graph):
            if not is_cycle(graph, component):
                continue
            inside = set(component)
            leaves = any(t not in inside for n in component for t in graph[n])
            if leaves or any(flow.nodes[n].type in HANDS_OFF for n in component):
                continue
            trapped |= inside
            where = base + ("nodes", component[0])
            if all(flow.nodes[n].type in INSTANT for n in component):
                self.add(where, f"endless loop: {_loop(component)} without waiting for the caller")
            else:
                self.add(
                    where,
                    f"cycle with no way out: {_loop(component)} (the caller can "
                    "leave only through the operator escape)",
                )
        instant = {
            n: [t for t in graph[n] if flow.nodes[t].type in INSTANT]
            for n in graph
            if flow.nodes[n].type in INSTANT
        }
        for component in strongly_connected(instant):
            if is_cycle(instant, component) and not trapped & set(component):
                self.warn(
                    base + ("nodes", component[0]),
                    f"possible endless loop: "
                    f"{_loop(component)} without waiting for the caller; make sure a "
                    "rule always leads out",
                )


def _loop(component: list[str]) -> str:
    """ "'a' leads only to itself", "'a' and 'b' lead only to each other"."""
    quoted = [f"'{n}'" for n in component]
    if len(quoted) == 1:
        return f"{quoted[0]} leads only to itself"
    return ", ".join(quoted[:-1]) + f" and {quoted[-1]} lead only to each other"
