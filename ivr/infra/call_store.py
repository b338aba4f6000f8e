"""Call state in Redis, keyed by CallSid, expiring after the call goes quiet.

Every write is a compare-and-set on the state's `turn`, in one Lua script: a step computed on
turn N is saved only while the stored state is still at turn N. Of two webhooks for one call
that race (a keypress and a speech redirect, or Twilio repeating a request), one wins; the
other is told so and answers with the winner's document. The document each turn rendered is
kept next to the state for that answer, and the journey rows of a step are queued by the same
script, so a step that lost writes none (no two rows share a `seq`).
"""

from __future__ import annotations

import redis

from ivr.core.callstate import CallState
from ivr.errors import StateUnavailable

KEY = "ivr:call:{sid}"
DOC_KEY = "ivr:call:{sid}:doc"  # the TwiML the current turn rendered
ENDED_TTL = 3600  # an ended call's state is kept this long, so late webhooks find it over

# KEYS: state, document, then counters to INCR when the write happens. ARGV: expected turn
# (-1: no state yet), state JSON, document ("" to keep the stored one), ttl, then list key /
# value pairs to RPUSH when the write happens.
# Returns 1 when written, 0 when the stored state is at another turn (or has ended).
# The stored state is a live call at the expected turn when it ends `"turn":N,"ended":""}`, as
# CallState.to_json writes it: JSON escapes every quote inside a string, so only the object's
# own last two members can read so, and no JSON decode (most of the script's time) is needed.
# Any other ending (a state another release wrote, an ended call) is decoded and checked.
_SAVE = """
local cur = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[1])
if cur then
  local tail = '"turn":' .. ARGV[1] .. ',"ended":""}'
  if string.sub(cur, -#tail) ~= tail then
    local ok, stored = pcall(cjson.decode, cur)
    if not ok or (stored['ended'] or '') ~= '' or (tonumber(stored['turn']) or 0) ~= expected then
      return 0
    end
  end
elseif expected ~= -1 then
  return 0
end
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ttl)
else
  redis.call('EXPIRE', KEYS[2], ttl)
end
for i = 5, #ARGV, 2 do
  redis.call('RPUSH', ARGV[i], ARGV[i + 1])
end
for i = 3, #KEYS do
  redis.call('INCR', KEYS[i])
end
return 1
"""


class StateStore:
    """Reads and writes `CallState` in Redis; every failure becomes `StateUnavailable`."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._save = client.register_script(_SAVE)

    def load(self, call_sid: str, *, ended: bool = False) -> CallState | None:
        """The call's state; None when unknown, or when it has ended unless `ended` is set."""
        try:
            raw = self.client.get(KEY.format(sid=call_sid))
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc
        if not raw:
            return None
        state = CallState.from_json(raw)
        return state if ended or not state.ended else None

    def load_with_document(self, call_sid: str) -> tuple[CallState | None, str | None]:
        """The call's state (ended or not) and its current document, in one round trip: a
        stale webhook is answered with that document, without asking Redis again."""
        try:
            raw, doc = self.client.mget(KEY.format(sid=call_sid), DOC_KEY.format(sid=call_sid))
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc
        state = CallState.from_json(raw) if raw else None
        return state, doc.decode() if isinstance(doc, bytes) else doc

    def load_marking(self, call_sid: str, set_key: str, member: str
                     ) -> tuple[CallState | None, bool | None]:
        """The call's state (ended or not), and SADD `member` to `set_key` in the same round
        trip: True when it was added, False when it was there already, None when the SADD
        failed (the state is what matters; a failed SADD does not fail the read)."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(KEY.format(sid=call_sid))
            pipe.sadd(set_key, member)
            raw, added = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc
        if isinstance(raw, Exception):
            raise StateUnavailable(str(raw)) from raw
        state = CallState.from_json(raw) if raw else None
        return state, None if isinstance(added, Exception) else bool(added)

    def document(self, call_sid: str) -> str | None:
        """The TwiML the call's current turn rendered, if it is still kept."""
        try:
            raw = self.client.get(DOC_KEY.format(sid=call_sid))
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc
        return raw.decode() if isinstance(raw, bytes) else raw

    def save(self, state: CallState, *, expected_turn: int | None, document: str = "",
             extra: list[tuple[str, str]] = (), incr: tuple[str, ...] = ()) -> bool:
        """Write `state` (and the `document` it rendered) if the stored state is still at
        `expected_turn` (None: there must be no state yet), and RPUSH each (list key, value) of
        `extra` and INCR each counter of `incr` with it. False, with nothing written (nor
        counted), when another write came first."""
        return self._write(state, expected_turn, document, self.ttl, extra, incr)

    def append(self, extra: list[tuple[str, str]]) -> None:
        """RPUSH each (list key, value), without touching any state (rows about an ended call)."""
        if not extra:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, value in extra:
                pipe.rpush(key, value)
            pipe.execute()
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc

    def finish(self, state: CallState, status: str, *, expected_turn: int | None,
               extra: list[tuple[str, str]] = (), incr: tuple[str, ...] = ()) -> bool:
        """Mark the call ended with its final `status` (kept for ENDED_TTL), RPUSH `extra` and
        INCR `incr`, if the stored state is still at `expected_turn` (None: there is none).
        False when another write came first: read again."""
        state.ended = status
        return self._write(state, expected_turn, "", min(self.ttl, ENDED_TTL), extra, incr)

    def _write(self, state: CallState, expected: int | None, document: str, ttl: int,
               extra, incr: tuple[str, ...]) -> bool:
        args: list[object] = [-1 if expected is None else expected, state.to_json(), document,
                              ttl]
        for key, value in extra:
            args += [key, value]
        keys = [KEY.format(sid=state.call_sid), DOC_KEY.format(sid=state.call_sid), *incr]
        try:
            return bool(self._save(keys=keys, args=args))
        except redis.RedisError as exc:
            raise StateUnavailable(str(exc)) from exc
