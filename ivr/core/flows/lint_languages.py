"""Checks that every language a flows file speaks is complete, and heard only where it can be.

A language is used when it is the default, a flow's, set by a menu option, or the language of
a `Say` part, or declared in `defaults.languages` (the service, and the callback page, may
speak any declared language). For each one:

- the service must know how to speak it: declared, or in the language table;
- every sentence the service composes exists for it, from its catalogue or from
  `defaults.phrases` (a missing one is an error here, never an English fallback at run time);
- every prompt a caller in that language can reach has a text for it. A plain text counts for
  every language (the author wrote one text for all), unless none of its letters are in the
  language's script: mixed text (a brand name, a loanword) is normal, a text wholly in another
  script is a missing translation (an error); a per-language text with no letters of its
  script is only a warning (it was written for that language on purpose);
- a language with no speech model (none configured, none published) takes keypresses only, so
  spoken phrases listed for it are never heard, and its prompts must not ask the caller to say
  anything (the language table knows its imperative "say": বলুন, சொல்லுங்கள்).

Which models are installed is not known here (the core does no I/O): `ivr speech models` says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ivr.core.flows.lint_speech import invites_speech, is_keypress_only, unheard
from ivr.core.flows.problem import Problem, Severity, did_you_mean, format_path
from ivr.core.flows.schema import (
    FlowFile,
    MenuNode,
    Phrases,
    Prompt,
    PromptPart,
    PromptValue,
    Say,
    VoicemailNode,
)
from ivr.core.flows.source import Path, SourceMap
from ivr.core.flows.walk import Reach, language_reach
from ivr.core.i18n import catalog, languages, numbers
from ivr.core.i18n.catalog import Phrasebook

SHOWN_KEYS = 4  # missing catalogue keys listed in full; past that, the first few and a count
_LETTER = re.compile(r"[^\W\d_]")


def problems(flowfile: FlowFile, lines: SourceMap, filename: str) -> list[Problem]:
    """Every language problem in the file: unknown languages, missing sentences and prompts,
    overrides that break their sentence, and phrases nobody can say."""
    return _Languages(flowfile, lines, filename).run()


def used_languages(flowfile: FlowFile) -> dict[str, Path]:
    """Every language the file speaks -> where it is first introduced (its defaults.languages
    entry when it has one)."""
    used: dict[str, Path] = {}
    for code in flowfile.defaults.languages:
        used.setdefault(code, ("defaults", "languages", code))
    for path, code in _caller_languages(flowfile):
        used.setdefault(code, path)
    return used


def _caller_languages(ff: FlowFile) -> Iterator[tuple[Path, str]]:
    """(path, code) for each place a language is chosen or spoken in, in file order."""
    yield ("defaults", "language"), ff.defaults.language
    for fname, flow in ff.flows.items():
        if flow.language is not None:
            yield ("flows", fname, "language"), flow.language
        for nname, node in flow.nodes.items():
            if isinstance(node, MenuNode):
                for i, option in enumerate(node.options):
                    if "language" in option.set:
                        path = ("flows", fname, "nodes", nname, "options", i, "set", "language")
                        yield path, option.set["language"]
    for path, prompt, _ in _prompts(ff):
        for part_path, part in _parts(path, prompt):
            if isinstance(part, Say) and part.language is not None:
                yield part_path + ("language",), part.language


def _prompts(ff: FlowFile) -> Iterator[tuple[Path, Prompt, tuple[str, str] | None]]:
    """(path, prompt, (flow, node) or None for the shared defaults) for every prompt given."""
    d = ff.defaults
    shared: list[tuple[Path, Prompt | None]] = [
        (("defaults", "no_input", "prompt"), d.no_input.prompt),
        (("defaults", "invalid_input", "prompt"), d.invalid_input.prompt),
        (("defaults", "closed_prompt"), d.closed_prompt),
        (("defaults", "operator", "prompt"), d.operator.prompt if d.operator else None),
    ]
    for path, prompt in shared:
        if prompt is not None:
            yield path, prompt, None
    for fname, flow in ff.flows.items():
        for nname, node in flow.nodes.items():
            base: Path = ("flows", fname, "nodes", nname)
            own = [(base + ("prompt",), node.prompt)]
            for retry in ("no_input", "invalid_input"):
                if getattr(node, retry) is not None:
                    own.append((base + (retry, "prompt"), getattr(node, retry).prompt))
            for path, prompt in own:
                if prompt is not None:
                    yield path, prompt, (fname, nname)


def _parts(path: Path, prompt: Prompt) -> Iterator[tuple[Path, PromptPart]]:
    """(path, part) for each part of a prompt, through a per-language mapping."""
    values = ({path + (k,): v for k, v in prompt.items()} if isinstance(prompt, dict)
              else {path: prompt})
    for where, value in values.items():
        if isinstance(value, str):
            yield where, value
        else:
            for i, part in enumerate(value):
                yield where + (i,), part


def _heard(value: PromptValue, language: str) -> dict[tuple[str, bool], str]:
    """(spoken language, said in a Say part's own language?) -> the text, for one prompt
    value heard by a caller in `language`."""
    out: dict[tuple[str, bool], str] = {}
    for part in [value] if isinstance(value, str) else value:
        if isinstance(part, str):
            key, text = (language, False), part
        elif isinstance(part, Say):
            key = (part.language, True) if part.language else (language, False)
            text = part.say
        else:
            continue
        out[key] = f"{out.get(key, '')} {text}"
    return out


def _lacks_script(code: str, text: str) -> bool:
    """True when `text` has letters but none in `code`'s script (a known language only)."""
    letters = "".join(_LETTER.findall(text))
    return bool(letters) and languages.foreign_letters(code, text) == letters


def _name(code: str) -> str:
    known = languages.info(code)
    return known.english_name if known else f"'{code}'"


def _compact(items: list[str]) -> str:
    if len(items) <= SHOWN_KEYS:
        return ", ".join(items)
    return ", ".join(items[: SHOWN_KEYS - 1]) + f" and {len(items) - SHOWN_KEYS + 1} more"


class _Languages:
    def __init__(self, flowfile: FlowFile, lines: SourceMap, filename: str) -> None:
        self.ff = flowfile
        self.lines = lines
        self.filename = filename
        self.problems: list[Problem] = []
        self.declared = list(flowfile.defaults.languages)
        self.book = Phrasebook(flowfile.defaults.phrases)
        self.reach: Reach = language_reach(flowfile)
        self.used = {code: path for code, path in used_languages(flowfile).items()
                     if self._is_known(code)}

    def add(self, path: Path, message: str, severity: Severity = Severity.ERROR) -> None:
        problem = Problem(self.filename, self.lines.line(path), format_path(path), message,
                          severity)
        if problem not in self.problems:  # a Say part is checked once per caller language
            self.problems.append(problem)

    def warn(self, path: Path, message: str) -> None:
        self.add(path, message, Severity.WARNING)

    def run(self) -> list[Problem]:
        self._known()
        self._catalogue()
        self._overrides()
        self._prompts()
        self._labels()
        self._speech()
        return self.problems

    # --- which languages ---------------------------------------------------------------------

    def _is_known(self, code: str) -> bool:
        return code in self.declared or languages.info(code) is not None

    def _unknown(self, code: str) -> str:
        choices = [*self.declared, *(c for c in languages.LANGUAGES if c not in self.declared)]
        by_name = next((c for c, i in languages.LANGUAGES.items()
                        if i.english_name.casefold() == code.casefold()), None)
        hint = (f" (did you mean '{by_name}'?)" if by_name else did_you_mean(code, choices)) or (
            f": add defaults.languages.{code} with its say: and voice:")
        return (f"language '{code}' is not in defaults.languages ({', '.join(self.declared)}) "
                f"and the service has no voice for it{hint}")

    def _language(self, code: str, path: Path) -> None:
        if not self._is_known(code):
            self.add(path, self._unknown(code))

    def _known(self) -> None:
        for path, code in _caller_languages(self.ff):
            self._language(code, path)
        for path, value in self._mappings():
            for code in value:
                self._language(code, path + (code,))

    def _mappings(self) -> Iterator[tuple[Path, dict]]:
        """Every per-language mapping: prompts, spoken phrases, queue labels."""
        for path, prompt, _ in _prompts(self.ff):
            if isinstance(prompt, dict):
                yield path, prompt
        for path, phrases, _ in self._phrases():
            if isinstance(phrases, dict):
                yield path, phrases
        for name, queue in self.ff.queues.items():
            if isinstance(queue.label, dict):
                yield ("queues", name, "label"), queue.label

    def _phrases(self) -> Iterator[tuple[Path, Phrases, tuple[str, str] | None]]:
        op = self.ff.defaults.operator
        if op is not None:
            yield ("defaults", "operator", "phrases"), op.phrases, None
        for fname, flow in self.ff.flows.items():
            for nname, node in flow.nodes.items():
                if isinstance(node, MenuNode):
                    for i, option in enumerate(node.options):
                        path = ("flows", fname, "nodes", nname, "options", i, "say")
                        yield path, option.say, (fname, nname)

    def _origin(self, path: Path) -> str:
        if path in self.lines:
            return f"language set at {self.filename}:{self.lines.line(path)}"
        return "the default language"

    # --- the catalogue and its overrides -----------------------------------------------------

    def _catalogue(self) -> None:
        total = len(catalog.keys())
        web = Phrasebook(self.ff.defaults.phrases, domain="web")
        for code, path in self.used.items():
            unshown = web.missing(code)
            if unshown:
                self.add(path, f"language '{code}' lacks {len(unshown)} sentence(s) of the "
                         f"callback page: {_compact(unshown)} (add defaults.phrases.{code}.KEY "
                         f"or write ivr/core/i18n/locale/{numbers.base(code)}/web.po)")
            missing = self.book.missing(code)
            if not missing:
                continue
            base = numbers.base(code)
            if base in catalog.languages():
                self.add(path, f"language '{code}' lacks {len(missing)} catalogue "
                         f"sentence(s): {_compact(missing)} (add defaults.phrases.{code}.KEY "
                         f"or the sentence to ivr/core/i18n/locale/{base}/voice.po)")
            else:
                given = total - len(missing)
                self.add(path, f"language '{code}' has no catalogue, and defaults.phrases."
                         f"{code} gives {given} of its {total} sentences: missing "
                         f"{_compact(missing)} (add defaults.phrases.{code}.KEY for each, or "
                         f"write ivr/core/i18n/locale/{base}/voice.po)")

    def _overrides(self) -> None:
        # Overrides reword what callers hear (voice) and what the callback page shows (web.*).
        english = {**catalog.catalogue("voice")[catalog.SOURCE_LANGUAGE],
                   **catalog.catalogue("web")[catalog.SOURCE_LANGUAGE]}
        for code, table in self.ff.defaults.phrases.items():
            base: Path = ("defaults", "phrases", code)
            if not self._is_known(code) and numbers.base(code) not in catalog.languages():
                self.add(base, self._unknown(code))
            for key, sentence in table.items():
                path = base + (key,)
                if key.startswith("var."):
                    continue  # a variable's spoken name: any key, no placeholders
                if key not in english:
                    hint = did_you_mean(key, english) or (
                        " (the keys are the msgids of ivr/core/i18n/locale/en/voice.po)")
                    self.add(path, f"unknown sentence '{key}'{hint}")
                    continue
                self._placeholders(path, sentence, english[key])

    def _placeholders(self, path: Path, sentence: str, source: str) -> None:
        try:
            given = catalog.fields(sentence)
        except ValueError as exc:
            self.add(path, f"not a sentence template ({exc}): write {{{{ and }}}} for a brace")
            return
        wanted = catalog.fields(source)
        read_out = {n for n, spec in catalog.specs(source).items() if spec == "digits"}
        for name in sorted(read_out & given):
            if catalog.specs(sentence).get(name) != "digits":
                self.add(path, f"{{{name}}} is read digit by digit: write {{{name}:digits}}")
        lost, extra = sorted(wanted - given), sorted(given - wanted)
        if lost:
            names = ", ".join(f"{{{n}}}" for n in lost)
            self.add(path, f"the override drops {names}, which the sentence must say "
                     f"(English: \"{source}\")")
        if extra:
            names = ", ".join(f"{{{n}}}" for n in extra)
            has = ", ".join(f"{{{n}}}" for n in sorted(wanted)) or "none"
            self.add(path, f"{names} is not filled in for this sentence (it has {has})")

    # --- prompts -----------------------------------------------------------------------------

    def _everyone(self) -> dict[str, Path]:
        """Every language that reaches any node, with where it was first chosen."""
        out: dict[str, Path] = {}
        for heard in self.reach.values():
            for code, origin in heard.items():
                out.setdefault(code, origin)
        return out

    def _prompts(self) -> None:
        everyone = self._everyone()
        for path, prompt, where in _prompts(self.ff):
            heard = everyone if where is None else self.reach.get(where, {})
            verb = "can hear it" if where is None else "reach this node"
            if isinstance(prompt, dict):
                for code, origin in heard.items():
                    if code not in prompt and self._is_known(code):
                        self.add(path, f"no '{code}' text, but {_name(code)} callers {verb} "
                                 f"({self._origin(origin)})")
                for code, value in prompt.items():
                    self._script(path + (code,), value, code, None)
                    self._invites(path + (code,), value, code, where)
            else:
                for code, origin in heard.items():
                    self._script(path, prompt, code, (verb, origin, list(heard)))
                    self._invites(path, prompt, code, where)

    def _invites(self, path: Path, value: PromptValue, code: str,
                 where: tuple[str, str] | None) -> None:
        node = self.ff.flows[where[0]].nodes.get(where[1]) if where else None
        if isinstance(node, VoicemailNode) or not is_keypress_only(self.ff, code):
            return  # a voicemail records what is said: asking for it is right
        for (spoken, _own), text in _heard(value, code).items():
            if spoken == code and invites_speech(code, text):
                self.warn(path, f"{_name(code)} menus take keypresses only (no speech model), "
                          "but this prompt asks the caller to say something: ask for keys")

    def _script(self, path: Path, value: PromptValue, code: str,
                plain: tuple[str, Path, list[str]] | None) -> None:
        """Warn when what `code`'s callers hear has no letter of the script it is said in.

        `plain` is (verb, origin, every language that hears it) for one text given for every
        language, None for the text a per-language mapping gives `code`."""
        for (spoken, own), text in _heard(value, code).items():
            if not _lacks_script(spoken, text):
                continue
            name = _name(spoken)
            if own:
                part = next(p for p, v in _parts(path, value)
                            if isinstance(v, Say) and v.language == spoken)
                self.warn(part, f"this part is said in {name} but has no {name} letters "
                          "(is it in the right language?)")
            elif plain is None:
                self.warn(path, f"the '{code}' text has no {name} letters "
                          "(is it in the right language?)")
            else:
                verb, origin, heard = plain
                per_language = ", ".join(f"{c}: ..." for c in heard)
                self.add(path, f"{name} callers {verb} ({self._origin(origin)}), but its one "
                          f"text has no {name} letters: give the prompt per language "
                          f"({{{per_language}}})")

    # --- queues and speech -------------------------------------------------------------------

    def _labels(self) -> None:
        for name, queue in self.ff.queues.items():
            if not isinstance(queue.label, dict):
                continue
            for code in self.used:
                if code not in queue.label:
                    self.warn(("queues", name, "label"),
                              f"no '{code}' label, though {_name(code)} is a flow language: "
                              f"a whisper in {_name(code)} cannot name this queue in it")

    def _speech(self) -> None:
        silent = {code for code in self.used if is_keypress_only(self.ff, code)}
        for path, phrases, where in self._phrases():
            if isinstance(phrases, dict):
                for code, said in phrases.items():
                    if code in silent and said:
                        self.warn(path + (code,), unheard(code, said))
            elif phrases and where is not None:
                heard = self.reach.get(where, {})
                if heard and set(heard) <= silent:
                    for code in heard:
                        self.warn(path, unheard(code, phrases))
