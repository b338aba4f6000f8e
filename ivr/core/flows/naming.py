"""How languages and queues are named to an agent, in the agent's language."""

from __future__ import annotations

from ivr.core.flows.schema import FlowFile, Queue
from ivr.core.i18n.catalog import SOURCE_LANGUAGE, Phrasebook
from ivr.core.i18n.languages import info


def language_name(book: Phrasebook, language: str, code: str) -> str:
    """The name of the language `code` said in `language` ("Bengali", "बंगाली"); a flow
    language the catalogue has no name for is called by its English name, else its code."""
    key = f"language.{code}"
    if book.template(language, key) or book.template(SOURCE_LANGUAGE, key):
        return book.say(language, key)
    known = info(code)
    return known.english_name if known else code


def queue_label(flows: FlowFile, queue: str, language: str, *, capitalized: bool = False) -> str:
    """How `queue` is named to someone who speaks `language`: its label in that language, else
    in the flows' default language, else its name (`capitalized` to start a sentence)."""
    label = (flows.queues.get(queue) or Queue()).label
    if isinstance(label, dict):
        label = label.get(language) or label.get(flows.defaults.language)
    name = queue.replace("_", " ")
    return label or (name.capitalize() if capitalized else name)


def names_languages(flows: FlowFile) -> bool:
    """Whether a whisper says which language the caller speaks: only where there is a choice."""
    return len(flows.defaults.languages) > 1
