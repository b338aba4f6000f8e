"""Status callbacks in the order Twilio produced them, each applied once.

Twilio numbers the status callbacks of a call (`SequenceNumber`: 0, 1, 2, ...), but delivers
them late, repeated and out of order. A callback is applied only when its number is above
every number applied for that call so far: a `ringing` after `completed`, or a repeat, changes
nothing. One Lua script keeps the highest number per call, atomically, for a day.

A callback is recorded as applied when its handling begins, so that a repeat arriving meanwhile
is not applied twice; if the handling then fails, the record is taken back (`applying`), so
that the repeat Twilio or the network sends is applied instead of being dropped as one already
seen: a failure never makes a call's end, or an agent's, be lost for good.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis

log = logging.getLogger(__name__)

KEY = "ivr:statusseq:{sid}"
KEEP_SECONDS = 86_400

# KEYS: the call's key. ARGV: this callback's number, how long to keep it.
# Returns the number applied before it (-1: none) when it is newer, else false.
_NEWER = """
local seen = tonumber(redis.call('GET', KEYS[1]) or '-1')
local seq = tonumber(ARGV[1])
if seq <= seen then return false end
redis.call('SET', KEYS[1], seq, 'EX', tonumber(ARGV[2]))
return seen
"""
# KEYS: the call's key. ARGV: the number whose handling failed, the one before it, how long
# to keep it. Puts the one before back, unless a newer number was applied since.
_FORGET = """
if tonumber(redis.call('GET', KEYS[1]) or '-1') ~= tonumber(ARGV[1]) then return 0 end
if tonumber(ARGV[2]) < 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
end
return 1
"""


def is_newest(r: redis.Redis, call_sid: str, sequence: str | None) -> bool:
    """Whether this status callback comes after every one applied for `call_sid` (and record
    it). One without a usable SequenceNumber is applied; so is one when Redis cannot answer
    (what applies it needs Redis too, and says so)."""
    return _record(r, call_sid, sequence) is not False


@contextmanager
def applying(r: redis.Redis, call_sid: str, sequence: str | None) -> Iterator[bool]:
    """`is_newest`, for the handling in the `with` block: when the block raises, the number
    is taken back (unless a newer one was applied meanwhile), so a repeat of this callback is
    applied rather than ignored. A block that returns normally has applied it."""
    before = _record(r, call_sid, sequence)
    try:
        yield before is not False
    except BaseException:
        if before is not None and before is not False:  # this callback's number was recorded
            _forget(r, call_sid, int(sequence), before)
        raise


def _record(r: redis.Redis, call_sid: str, sequence: str | None) -> int | None | bool:
    """False when the callback is not the newest; else the number applied before it (-1:
    none), or None when it has no usable number or Redis cannot answer (it is applied)."""
    if not call_sid or sequence is None or not (sequence.strip().isascii()
                                                and sequence.strip().isdigit()):
        return None
    try:
        seen = r.register_script(_NEWER)(keys=[KEY.format(sid=call_sid)],
                                         args=[int(sequence), KEEP_SECONDS])
    except redis.RedisError as exc:
        log.warning("status callback order unknown (Redis): applied", extra={
            "call_sid": call_sid, "error": str(exc)})
        return None
    return False if seen is None else int(seen)


def _forget(r: redis.Redis, call_sid: str, sequence: int, before: int) -> None:
    try:
        r.register_script(_FORGET)(keys=[KEY.format(sid=call_sid)],
                                   args=[sequence, before, KEEP_SECONDS])
    except redis.RedisError as exc:
        log.warning("a status callback that failed stays recorded (Redis): its repeat will "
                    "be ignored", extra={"call_sid": call_sid, "error": str(exc)})
