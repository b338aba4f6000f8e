"""Shared by the callback language tests: flows that speak Hindi, Bengali and Tamil too, and
reading what a TwiML document says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from ivr.core.i18n.languages import foreign_letters

INDIAN = ("hi", "bn", "ta")


def speak_indian_languages(flows_path: Path) -> None:
    """Declare Hindi, Bengali and Tamil in the test flows (with the service's default voices),
    beside their English and Korean, and name the support line in each."""
    data = yaml.safe_load(flows_path.read_text())
    data["defaults"]["languages"].update({code: {} for code in INDIAN})
    # How agents hear the line named, in their own language.
    data["queues"]["support"]["label"] = {"en": "support", "hi": "सहायता", "bn": "সহায়তা",
                                          "ta": "உதவி", "ko": "고객 지원"}
    flows_path.write_text(yaml.safe_dump(data, allow_unicode=True))


def says(document: str) -> list[tuple[str, str | None, str | None]]:
    """(text, language, voice) of every <Say> in a TwiML document, in order."""
    return [(say.text or "", say.get("language"), say.get("voice"))
            for say in ET.fromstring(document).iter("Say")]


def assert_spoken_in(language: str, say_language: str, voice: str, spoken: list) -> None:
    """Every (text, language, voice) is written in `language`'s script, in its voice."""
    assert spoken, "nothing was said"
    for text, said_as, said_by in spoken:
        assert (said_as, said_by) == (say_language, voice), text
        assert foreign_letters(language, text) == "", text
