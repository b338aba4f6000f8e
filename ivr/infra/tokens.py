"""Secret tokens given to people (cancel links, agents' self-service): made here, stored hashed."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """What we store of a token: a fast hash is enough, there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()
