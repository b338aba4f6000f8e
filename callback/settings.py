"""The CALLBACK_* settings and their defaults (the app config or the environment override
them; see `ivr.infra.config`)."""

from __future__ import annotations

from typing import Any

RQ_QUEUE = "callbacks"

DEFAULTS: dict[str, Any] = {
    "CALLBACK_MODE": "agent-first",  # or "customer-first"
    "CALLBACK_DEFAULT_QUEUE": None,  # None: the flows' operator queue
    "CALLBACK_ALLOWED_COUNTRIES": "US,CA",
    "CALLBACK_DEFAULT_REGION": "US",
    "CALLBACK_LIMIT_PER_NUMBER": "3/3600",
    "CALLBACK_LIMIT_PER_ADDRESS": "10/600",
    "CALLBACK_DAILY_DIAL_CAP": 1000,
    "CALLBACK_MAX_ATTEMPTS": 3,
    "CALLBACK_RETRY_BACKOFF": "120,600",  # seconds before the 2nd, 3rd... attempt
    "CALLBACK_CALLING_WINDOW": "08:00-21:00",  # the called party's local time
    "CALLBACK_RING_TIMEOUT": 25,
    # A dial job not started this long after dispatch is sent again (it is guarded).
    "CALLBACK_DISPATCH_GRACE": 30,
    # An attempt claimed but never confirmed by the provider this long is taken as lost.
    "CALLBACK_LOST_AFTER": 120,
    # An attempt still open this long after its dial is checked with the provider (each time
    # at most once per this many seconds): a lost final status callback never strands it.
    "CALLBACK_STUCK_AFTER": 300,
    "CALLBACK_DISPATCH_INTERVAL": 0.1,
    "CALLBACK_SWEEP_INTERVAL": 5.0,
    # A request whose jobs raise this many times ends as failed (the error is kept).
    "CALLBACK_MAX_JOB_FAILURES": 5,
    # Origins whose pages may post callback requests, comma-separated ("https://shop.example");
    # empty: only this service's own pages (PUBLIC_BASE_URL, or the host it was reached at).
    "CALLBACK_ALLOWED_ORIGINS": "",
    # An ALTCHA proof-of-work (PBKDF2/SHA-256) in front of POST /callbacks: "on" or "off" (for
    # deployments that guard the API another way). Cost is iterations per attempt; about 256
    # attempts are needed on average (a one-byte key prefix).
    "CALLBACK_PROOF_OF_WORK": "on",
    "CALLBACK_POW_COST": 5000,
    "CALLBACK_POW_SECONDS": 600,  # how long a challenge may be solved and used (once)
    "CALLBACK_MAX_DAYS_AHEAD": 30,  # the latest preferred_time a visitor may choose
    # What the visitor agrees to by ticking the box; its version (a digest of the wording) is
    # stored with every request.
    "CALLBACK_CONSENT_TEXT": (
        "By asking for a callback you agree that we may call this number once about your "
        "request, within our opening hours. We keep the number only for this callback."
    ),
}
