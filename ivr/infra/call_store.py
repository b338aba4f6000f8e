"""Call state in Redis, keyed by CallSid, expiring after the call goes quiet."""

from __future__ import annotations

import redis

from ivr.core.callstate import CallState
from ivr.errors import StateUnavailable

KEY = "ivr:call:{sid}"


class StateStore:
    """Reads and writes `CallState` in Redis; every failure becomes `StateUnavailable`."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds

    def load(self, call_sid: str) -> CallState | None:
        try:
            raw = self.client.get(KEY.format(sid=call_sid))
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc
        return CallState.from_json(raw) if raw else None

    def save(self, state: CallState, *, extra: list[tuple[str, str]] = ()) -> None:
        """Write `state`, and RPUSH each (list key, value) of `extra` in the same round trip."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(KEY.format(sid=state.call_sid), state.to_json(), ex=self.ttl)
            for key, value in extra:
                pipe.rpush(key, value)
            pipe.execute()
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc

    def finish(self, call_sid: str, *, extra: list[tuple[str, str]] = ()) -> None:
        """Drop a finished call's state, and RPUSH `extra` in the same round trip."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, value in extra:
                pipe.rpush(key, value)
            pipe.delete(KEY.format(sid=call_sid))
            pipe.execute()
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc
