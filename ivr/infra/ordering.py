"""Status callbacks in the order Twilio produced them, each applied once.

Twilio numbers the status callbacks of a call (`SequenceNumber`: 0, 1, 2, ...), but delivers
them late, repeated and out of order. A callback is applied only when its number is above
every number applied for that call so far: a `ringing` after `completed`, or a repeat, changes
nothing. One Lua script keeps the highest number per call, atomically, for a day.
"""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)

KEY = "ivr:statusseq:{sid}"
KEEP_SECONDS = 86_400

# KEYS: the call's key. ARGV: this callback's number, how long to keep it.
_NEWER = """
local seen = tonumber(redis.call('GET', KEYS[1]) or '-1')
local seq = tonumber(ARGV[1])
if seq <= seen then return 0 end
redis.call('SET', KEYS[1], seq, 'EX', tonumber(ARGV[2]))
return 1
"""


def is_newest(r: redis.Redis, call_sid: str, sequence: str | None) -> bool:
    """Whether this status callback comes after every one applied for `call_sid` (and record
    it). One without a usable SequenceNumber is applied; so is one when Redis cannot answer
    (what applies it needs Redis too, and says so)."""
    if not call_sid or sequence is None or not (sequence.strip().isascii()
                                                and sequence.strip().isdigit()):
        return True
    try:
        return bool(r.register_script(_NEWER)(keys=[KEY.format(sid=call_sid)],
                                              args=[int(sequence), KEEP_SECONDS]))
    except redis.RedisError as exc:
        log.warning("status callback order unknown (Redis): applied", extra={
            "call_sid": call_sid, "error": str(exc)})
        return True
