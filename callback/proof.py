"""A proof-of-work in front of POST /callbacks: ALTCHA (the `altcha` library), no third party.

GET /callbacks/challenge hands out a challenge signed with a key derived from the service's
secret; the widget (the npm `altcha` web component, vendored in static/vendor) solves it in the
visitor's browser, and the request carries the solution as `altcha`. A solution is good once:
its challenge signature is remembered in Redis until the challenge expires. Expiry and the
library's own checks run on real time, since they measure how long the solving took.

CALLBACK_PROOF_OF_WORK=off turns this off, for deployments that guard the API another way.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

import altcha
import redis

from callback.deps import Deps
from callback.errors import ProofRequired

log = logging.getLogger(__name__)
ALGORITHM = "PBKDF2/SHA-256"
USED_PREFIX = "ivr:cb:pow:used:"


def is_required(deps: Deps) -> bool:
    """True unless CALLBACK_PROOF_OF_WORK is off."""
    return str(deps.setting("CALLBACK_PROOF_OF_WORK")).strip().lower() not in (
        "off", "0", "false", "no")


def signing_key(deps: Deps) -> bytes:
    """The key challenges are signed with."""
    # Every process shares TWILIO_AUTH_TOKEN; a derived key keeps it out of the challenges.
    secret = str(deps.config.get("TWILIO_AUTH_TOKEN") or "")
    return hmac.new(secret.encode(), b"ivr-callback-altcha-v1", hashlib.sha256).digest()


def new_challenge(deps: Deps) -> dict[str, Any]:
    """A fresh signed challenge, as the widget fetches it."""
    challenge = altcha.create_challenge(
        ALGORITHM, int(deps.setting("CALLBACK_POW_COST")),
        expires_at=int(time.time()) + int(deps.setting("CALLBACK_POW_SECONDS")),
        hmac_secret=signing_key(deps))
    return challenge.to_dict()


def check(deps: Deps, payload: str | None) -> None:
    """Accept a solved, unexpired, unused challenge once; ProofRequired otherwise."""
    if not is_required(deps):
        return
    if not payload:
        raise ProofRequired(
            "This request needs the page's automatic check (proof of work): reload the page "
            "and try again, or call us.")
    result = altcha.verify_solution(payload, signing_key(deps))
    if result.expired:
        raise ProofRequired("The page's automatic check has expired: try again.")
    if not result.verified:
        raise ProofRequired("The page's automatic check did not pass: reload the page and try "
                            "again, or call us.")
    signature = altcha.Payload.from_base64(payload).challenge.signature or ""
    try:
        fresh = deps.redis.set(USED_PREFIX + signature, "1", nx=True,
                               ex=int(deps.setting("CALLBACK_POW_SECONDS")) + 60)
    except redis.RedisError:
        # Redis is down: the request is still taken (the SQL fallback limits still count it),
        # but a reused solution cannot be told from a new one until Redis is back.
        log.warning("proof of work accepted without its reuse check: Redis is unreachable")
        return
    if not fresh:
        raise ProofRequired("The page's automatic check was already used: try again.")
