"""What the service says by itself, in each caller's language: catalogues, numbers, voices."""

from ivr.core.i18n.catalog import Phrasebook
from ivr.core.i18n.languages import LANGUAGES, LanguageInfo, foreign_letters

__all__ = ["LANGUAGES", "LanguageInfo", "Phrasebook", "foreign_letters"]
