"""The call state's compare-and-set, against a real Redis: a step is saved only over the state
it was computed on (the same turn, a call not ended), whatever the stored text looks like.

The store's script reads the turn from the end of the JSON `CallState.to_json` writes, and
decodes anything else in full; each case here is decided by both ways the same as by the plain
rule (`expected_result`), including stored texts the fast read must not be fooled by.
"""

from __future__ import annotations

import json

import pytest

from ivr.core.callstate import CallState
from ivr.infra.call_store import KEY, StateStore


def state(turn: int = 3, ended: str = "", **vars_: str) -> CallState:
    return CallState(call_sid="CAstore", flow="main", version="v1", node="menu",
                     language="en", vars=dict(vars_), turn=turn, ended=ended)


def expected_result(stored: str | None, expected: int | None) -> bool:
    """The rule: no state and none expected, or a decodable live state at the expected turn."""
    if stored is None:
        return expected is None
    try:
        data = json.loads(stored)
    except ValueError:
        return False
    return (expected is not None and not (data.get("ended") or "")
            and int(data.get("turn") or 0) == expected)


TAIL = '"turn":3,"ended":""}'
STORED = {
    "as written": state().to_json(),
    "another turn": state(turn=4).to_json(),
    "turn 13 (ends like 3)": state(turn=13).to_json(),
    "ended": state(ended="completed").to_json(),
    "ended, with a quote in the status": state(ended='x","ended":"').to_json(),
    "a var holding the tail": state(turn=5, note=TAIL).to_json(),
    "a var holding the tail, last": json.dumps({**vars(state(turn=5)), "zz": TAIL}),
    "fields in another order": json.dumps(dict(reversed(list(vars(state()).items())))),
    "a field after ended": json.dumps({**vars(state()), "later": 1}),
    "a newer field, ended": json.dumps({**vars(state(ended="busy")), "later": 1}),
    "spaces": json.dumps(vars(state())),
    "not JSON": "{" + TAIL,
    "nothing stored": None,
}


@pytest.mark.parametrize("name", list(STORED))
@pytest.mark.parametrize("expected", [None, 3, 4, 13, 5])
def test_a_step_is_saved_only_over_the_state_it_was_computed_on(redis_client, name, expected):
    store = StateStore(redis_client, ttl_seconds=60)
    stored = STORED[name]
    key = KEY.format(sid="CAstore")
    redis_client.delete(key)
    if stored is not None:
        redis_client.set(key, stored)
    new = state(turn=(expected or 0) + 1)
    saved = store.save(new, expected_turn=expected, document="<Response/>")
    assert saved is expected_result(stored, expected)
    after = redis_client.get(key)
    assert after == (new.to_json().encode() if saved else
                     (stored.encode() if stored is not None else None))


def test_the_fast_read_meets_what_to_json_writes():
    """The script's fast read relies on the last two members `to_json` writes: the test above
    only exercises it if they are still `turn` then `ended`."""
    assert state().to_json().endswith(TAIL)
