"""Solving the service's proof of work as a client must: fetch a challenge, find the counter
with the `altcha` library, send the payload. What the widget does in a browser, for tests that
speak HTTP."""

from __future__ import annotations

import altcha


def solved(challenge: dict) -> str:
    """The `altcha` payload for a challenge as GET /callbacks/challenge returns it."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=60)
    assert solution is not None, "the challenge was not solved within a minute"
    return altcha.Payload(parsed, solution).to_base64()


def solve_over_http(session_get, base_url: str) -> str:
    """Fetch a challenge with `session_get` (requests.get, or a test client's get) and solve it."""
    resp = session_get(base_url + "/callbacks/challenge")
    data = resp.json() if callable(getattr(resp, "json", None)) else resp.get_json()
    return solved(data)
