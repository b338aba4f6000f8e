"""Who is holding, in Redis: one record per waiting caller, their event log, queue history.

The wait URL is hit by every holding caller every `announce_every` seconds, so it touches only
Redis: the caller's record (a hash), a log of what happened (a list of JSON items: events and
estimates) and the queue's learned history. The log goes to SQL once, when the caller leaves
(`ivr.hold.tracking.record_visit`). Keys expire, so a caller whose leave was never reported
does not linger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from ivr.core.waits.bands import Announcement
from ivr.core.waits.history import HistoryStats
from ivr.infra import line, queue_history
from ivr.infra.redis_conn import decoded

RECORD = line.HOLD_RECORD
# The token of the caller's last visit that ended (`v`); for visits with no token (the outage
# TwiML's), when the last one ended (epoch seconds, the service's clock).
LEFT = "ivr:hold:left:v:{sid}"
LEFT_UNTOKENED = "ivr:hold:left:t:{sid}"
LOG = "ivr:hold:caller:{sid}:log"
# A holding caller's wait URL is requested at least once per hold-music clip; a record not
# refreshed for this long belongs to a caller whose leave Twilio never reported.
TTL_SECONDS = 30 * 60
_ANN = "ann_"  # prefix of the stored Announcement's fields in the record hash


@dataclass
class Holder:
    """A caller waiting in a queue (or who just left it)."""

    call_sid: str
    queue: str
    first_asked: float  # epoch seconds: their place in the shared line
    joined_at: float  # epoch seconds this visit began
    caller: str = ""
    announced: int = 0  # announcements heard
    last_announced: float = -1.0  # elapsed wait at the last announcement; -1: none yet
    announcement: Announcement | None = None
    leaving: str = ""  # why we asked Twilio to take them out: "callback"
    max_wait_offered: bool = False
    visit: int = 0  # the <Enqueue>'s visit token (`v`); 0: unknown (the outage TwiML's)
    language: str = ""  # the caller's flow language (`lang`); "": the flows' default
    # The Twilio queue they wait in (named by language, `twilio_queue`), as it was named when
    # they joined: a reload that changes the default language does not rename it.
    twilio_queue: str = ""

    @classmethod
    def from_hash(cls, sid: str, raw: dict) -> Holder:
        """Rebuild from HGETALL output (bytes keys and values)."""
        f = decoded(raw)
        ann = {k[len(_ANN):]: v for k, v in f.items() if k.startswith(_ANN)}
        return cls(
            call_sid=sid,
            queue=f.get("queue", ""),
            first_asked=float(f.get("first_asked") or 0),
            joined_at=float(f.get("joined_at") or 0),
            caller=f.get("caller", ""),
            announced=int(f.get("announced") or 0),
            last_announced=float(f.get("last_announced") or -1),
            announcement=Announcement.from_dict(ann) if ann else None,
            leaving=f.get("leaving", ""),
            max_wait_offered=f.get("max_wait_offered") == "1",
            visit=int(f.get("visit") or 0),
            language=f.get("language", ""),
            twilio_queue=f.get("twilio_queue", ""),
        )

    def to_hash(self) -> dict[str, str]:
        """Flat string fields for HSET."""
        out = {
            "queue": self.queue,
            "first_asked": repr(self.first_asked),
            "joined_at": repr(self.joined_at),
            "visit": str(self.visit),
            "language": self.language,
            "twilio_queue": self.twilio_queue,
            "caller": self.caller,
            "announced": str(self.announced),
            "last_announced": repr(self.last_announced),
            "leaving": self.leaving,
            "max_wait_offered": "1" if self.max_wait_offered else "0",
        }
        if self.announcement is not None:
            out.update({_ANN + k: str(v) for k, v in self.announcement.to_dict().items()})
        return out


def load(r: redis.Redis, call_sid: str) -> Holder | None:
    """The caller's hold record, or None if they are not (or no longer) holding."""
    raw = r.hgetall(RECORD.format(sid=call_sid))
    return Holder.from_hash(call_sid, raw) if raw else None


def load_with_history(r: redis.Redis, call_sid: str,
                      queue: str) -> tuple[Holder | None, HistoryStats]:
    """The caller's record and the queue's history in one round trip (the wait URL's read)."""
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(RECORD.format(sid=call_sid))
    pipe.hgetall(queue_history.KEY.format(queue=queue))
    pipe.expire(RECORD.format(sid=call_sid), TTL_SECONDS)  # still here: keep the record
    pipe.expire(LOG.format(sid=call_sid), TTL_SECONDS)
    raw, learned, _, _ = pipe.execute()
    holder = Holder.from_hash(call_sid, raw) if raw else None
    return holder, HistoryStats.from_dict(learned)


# KEYS: record, log, the line's callers, the two left markers. ARGV: ttl, first asked, the
# visit token, the first log item, the CallSid, the visit's start, then the record's
# field/value strings. 0 when the visit this request belongs to already ended, or a later one
# did (a late or repeated wait-URL request after the caller left). A visit with no token is
# judged by time: refused when one ended after it began.
_JOIN = """
local v = tonumber(ARGV[3])
if v > 0 then
  local left = redis.call('GET', KEYS[4])
  if left and tonumber(left) >= v then return 0 end
else
  local left = redis.call('GET', KEYS[5])
  if left and tonumber(left) >= tonumber(ARGV[6]) then return 0 end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 7, #ARGV))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1]))
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[5])
return 1
"""


def join(r: redis.Redis, holder: Holder, event: dict) -> bool:
    """Start a visit: the record, the first log item, and a place in the shared line; False
    (and nothing written) when this request belongs to a visit that has already ended."""
    sid = holder.call_sid
    fields = [x for pair in holder.to_hash().items() for x in pair]
    return bool(r.register_script(_JOIN)(
        keys=[RECORD.format(sid=sid), LOG.format(sid=sid),
              line.CALLERS.format(queue=holder.queue), LEFT.format(sid=sid),
              LEFT_UNTOKENED.format(sid=sid)],
        args=[TTL_SECONDS, repr(holder.first_asked), str(holder.visit),
              json.dumps(event, separators=(",", ":"), default=str), sid,
              repr(holder.joined_at), *fields]))


def save(r: redis.Redis, holder: Holder, *items: dict) -> bool:
    """Write the record back and append log items, in one round trip; only while the caller
    is still holding (False otherwise), so a webhook racing the hang-up leaves no ghost."""
    fields = [x for pair in holder.to_hash().items() for x in pair]
    logs = [json.dumps(item, separators=(",", ":"), default=str) for item in items]
    return bool(r.register_script(_SAVE_IF_HOLDING)(
        keys=[RECORD.format(sid=holder.call_sid), LOG.format(sid=holder.call_sid)],
        args=[TTL_SECONDS, len(fields), *fields, *logs]))


# KEYS: record, log. ARGV: ttl, number of field/value strings, the fields, then log items.
_SAVE_IF_HOLDING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 3, 2 + n)) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
for i = 3 + n, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
if #ARGV >= 3 + n then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1])) end
return 1
"""


def log_item(r: redis.Redis, call_sid: str, item: dict) -> None:
    """Append one item to a holding caller's log."""
    pipe = r.pipeline(transaction=False)
    _push(pipe, call_sid, item)
    pipe.execute()


# KEYS: record, log, the two left markers. ARGV: the visit token, the time, ttl. {'repeat'}
# when this visit (or a later one) already ended: nothing is touched. Else {'ended', the
# record's HGETALL, the log}; the marker only ever moves forward.
_FINISH = """
local v = tonumber(ARGV[1])
if v > 0 then
  local left = redis.call('GET', KEYS[3])
  if left and tonumber(left) >= v then return {'repeat'} end
  redis.call('SET', KEYS[3], ARGV[1], 'EX', tonumber(ARGV[3]))
else
  redis.call('SET', KEYS[4], ARGV[2], 'EX', tonumber(ARGV[3]))
end
local raw = redis.call('HGETALL', KEYS[1])
local items = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return {'ended', raw, items}
"""


@dataclass(frozen=True)
class Ended:
    """What finishing a visit found: the caller's record and log, or that it ended before."""

    holder: Holder | None
    items: list[dict]
    repeated: bool = False  # this visit's end had been recorded already (Twilio sent it again)


def finish(r: redis.Redis, call_sid: str, visit: int, at: float) -> Ended:
    """End visit `visit` (its token; 0 when its <Enqueue> had none) at `at` (epoch seconds,
    the service's clock): take the record and its log out of Redis and the caller out of the
    line, and remember the visit, so a late or repeated wait-URL request of it cannot start it
    again. A repeat of an end already recorded changes nothing (`repeated`)."""
    out = r.register_script(_FINISH)(
        keys=[RECORD.format(sid=call_sid), LOG.format(sid=call_sid),
              LEFT.format(sid=call_sid), LEFT_UNTOKENED.format(sid=call_sid)],
        args=[max(0, visit), repr(at), TTL_SECONDS])
    if out[0] == b"repeat":
        return Ended(None, [], repeated=True)
    flat = out[1]
    raw = dict(zip(flat[::2], flat[1::2], strict=True))
    if not raw:
        return Ended(None, [])
    holder = Holder.from_hash(call_sid, raw)
    line.leave_caller(r, holder.queue, call_sid)
    return Ended(holder, [json.loads(x) for x in out[2]])


def _push(pipe, call_sid: str, item: dict) -> None:
    key = LOG.format(sid=call_sid)
    pipe.rpush(key, json.dumps(item, separators=(",", ":"), default=str))
    pipe.expire(key, TTL_SECONDS)
