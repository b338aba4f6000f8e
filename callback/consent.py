"""The words a visitor agrees to before we may call them, and the version stored with each
request (pure).

The wording is the service's own (CALLBACK_CONSENT_TEXT), never what a client sends; its version
is a digest of the words, so a changed text is a new version without anyone remembering to bump
a number, and a page that showed an older wording can be told to reload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PHONE_CONSENT = "Requested by the caller on the phone."


@dataclass(frozen=True)
class Consent:
    """A consent wording and its version."""

    text: str
    version: str

    @classmethod
    def of(cls, text: str) -> Consent:
        """The wording with its version: 'c-' and 12 hex digits of its SHA-256."""
        digest = hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()
        return cls(text, f"c-{digest[:12]}")
