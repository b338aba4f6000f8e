"""Live agent presence in Redis: one hash per agent plus per-queue indexes, changed only by Lua.

The scripts compute the keys they touch (an agent's hash comes from a sorted set), so they do
not declare them: they need one Redis keyspace, not a Redis Cluster (RQ needs one too). The
`{ivr-agents}` hash tag is kept so existing keys stay readable. Per queue there are three indexes:

- `avail:<queue>`  sorted set of available agents scored by idle-since (lowest = longest idle);
- `wrap:<queue>`   sorted set of agents in wrap-up scored by wrap-up end (counted as available
                   once the end has passed, before anyone promotes them);
- `staffed:<queue>` set of agents that are not offline.

`wrapping` holds every agent in wrap-up, scored by its end. Wrap-up expiry is lazy: each script
first promotes the agents whose wrap-up has ended (their idle time starts at the wrap-up end) and
returns them, so the caller can record those changes in SQL. No background thread is needed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import redis

from ivr.infra.redis_conn import text

PREFIX = "{ivr-agents}:"


class AgentStatus(StrEnum):
    """Where an agent is: ready for a call, on one, finishing one, or away."""

    AVAILABLE = "available"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Presence:
    """An agent's presence as read from Redis (effective: an ended wrap-up reads as available)."""

    status: AgentStatus
    since: dt.datetime | None = None
    idle_since: dt.datetime | None = None
    wrap_up_until: dt.datetime | None = None
    call_sid: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready values."""
        return {
            "status": self.status.value,
            "since": _iso(self.since),
            "idle_since": _iso(self.idle_since),
            "wrap_up_until": _iso(self.wrap_up_until),
            "call_sid": self.call_sid,
        }


@dataclass(frozen=True)
class Promotion:
    """An agent whose wrap-up ended (at `at`) and who became available."""

    agent_id: int
    at: dt.datetime


_PROMOTE = """
local p = ARGV[1]
local now = ARGV[2]
local promoted = {}
local due = redis.call('ZRANGEBYSCORE', p .. 'wrapping', '-inf', now)
for _, id in ipairs(due) do
  local akey = p .. 'agent:' .. id
  local untl = redis.call('HGET', akey, 'wrap_until') or now
  local qs = redis.call('HGET', akey, 'queues') or ''
  redis.call('ZREM', p .. 'wrapping', id)
  for q in string.gmatch(qs, '[^,]+') do
    redis.call('ZREM', p .. 'wrap:' .. q, id)
    redis.call('ZADD', p .. 'avail:' .. q, untl, id)
  end
  redis.call('HSET', akey, 'status', 'available', 'since', untl, 'idle_since', untl,
             'wrap_until', '')
  table.insert(promoted, id)
  table.insert(promoted, untl)
end
"""

# ARGV: prefix, now, agent id, new status, idle mode (keep|now|prev), wrap-up end, queues csv,
# expected current statuses csv ('' = any), call sid that must match ('' = any),
# call sid to store ('' = keep, '-' = clear), reason of the claim ('' = keep)
_APPLY = (
    _PROMOTE
    + """
local id, new, idle_mode, wrap_until = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local queues, expect, sid_guard, set_sid = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local akey = p .. 'agent:' .. id
local cur = redis.call('HGET', akey, 'status') or 'offline'
local result = {cur, '0'}
for _, v in ipairs(promoted) do table.insert(result, v) end
if expect ~= '' and not string.find(',' .. expect .. ',', ',' .. cur .. ',', 1, true) then
  return result
end
local sid = redis.call('HGET', akey, 'call_sid') or ''
if sid_guard ~= '' and sid ~= '' and sid ~= sid_guard then
  return result
end
-- A call this agent was already freed from moves them no more: its late final status would
-- otherwise pass the guard above once a new claim has cleared call_sid, mid-ring.
local done = redis.call('HGET', akey, 'done_sid') or ''
if sid_guard ~= '' and sid_guard == done then
  return result
end
local old_idle = redis.call('HGET', akey, 'idle_since') or ''
local idle = old_idle
if new == 'available' then
  if idle_mode == 'prev' then
    idle = redis.call('HGET', akey, 'prev_idle') or ''
    if idle == '' then idle = now end
  elseif idle_mode == 'now' or cur ~= 'available' or old_idle == '' then
    idle = now
  end
end
if new ~= 'wrap_up' then wrap_until = '' end
local oldq = redis.call('HGET', akey, 'queues') or ''
redis.call('ZREM', p .. 'wrapping', id)
for q in string.gmatch(oldq, '[^,]+') do
  redis.call('ZREM', p .. 'avail:' .. q, id)
  redis.call('ZREM', p .. 'wrap:' .. q, id)
  redis.call('SREM', p .. 'staffed:' .. q, id)
end
for q in string.gmatch(queues, '[^,]+') do
  if new ~= 'offline' then redis.call('SADD', p .. 'staffed:' .. q, id) end
  if new == 'available' then redis.call('ZADD', p .. 'avail:' .. q, idle, id) end
  if new == 'wrap_up' then redis.call('ZADD', p .. 'wrap:' .. q, wrap_until, id) end
end
if new == 'wrap_up' then redis.call('ZADD', p .. 'wrapping', wrap_until, id) end
local since = redis.call('HGET', akey, 'since') or now
if new ~= cur then since = now end
if set_sid == '-' then sid = '' elseif set_sid ~= '' then sid = set_sid
elseif new == 'available' or new == 'offline' then sid = '' end
redis.call('HSET', akey, 'status', new, 'since', since, 'idle_since', idle,
           'wrap_until', wrap_until, 'queues', queues, 'call_sid', sid)
if sid_guard ~= '' and new ~= 'busy' then redis.call('HSET', akey, 'done_sid', sid_guard) end
result[2] = '1'
return result
"""
)

# ARGV: prefix, now, queue, '' or 'among', then the agent ids allowed when 'among'.
# Returns {picked id or '', promoted id, promoted at, ...}.
_CLAIM = (
    _PROMOTE
    + """
local queue = ARGV[3]
local result = {''}
for _, v in ipairs(promoted) do table.insert(result, v) end
local id = nil
if ARGV[4] == 'among' then
  -- Only these may take it (they speak the caller's language): the longest idle of them,
  -- ties broken as ZRANGE breaks them, by id.
  local best = nil
  for i = 5, #ARGV do
    local score = redis.call('ZSCORE', p .. 'avail:' .. queue, ARGV[i])
    if score then
      score = tonumber(score)
      if best == nil or score < best or (score == best and ARGV[i] < id) then
        best, id = score, ARGV[i]
      end
    end
  end
else
  id = redis.call('ZRANGE', p .. 'avail:' .. queue, 0, 0)[1]
end
if not id then return result end
local akey = p .. 'agent:' .. id
local qs = redis.call('HGET', akey, 'queues') or ''
-- An agent serving several queues leaves every one of them, or two queues could claim them.
for q in string.gmatch(qs, '[^,]+') do
  redis.call('ZREM', p .. 'avail:' .. q, id)
end
redis.call('ZREM', p .. 'avail:' .. queue, id)
local idle = redis.call('HGET', akey, 'idle_since') or ''
redis.call('HSET', akey, 'status', 'busy', 'since', now, 'prev_idle', idle, 'call_sid', '')
result[1] = id
return result
"""
)


_PROMOTE_ONLY = _PROMOTE + "\nreturn promoted"


@functools.cache
def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def _run(r: redis.Redis, script: str, *args: str):
    # EVALSHA saves sending the script on every call; EVAL on a miss also caches it server-side.
    try:
        return r.evalsha(_sha(script), 0, *args)
    except redis.exceptions.NoScriptError:
        return r.eval(script, 0, *args)


def _ts(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given for agent presence")
    return repr(moment.timestamp())


def _from_ts(value: bytes | str | None) -> dt.datetime | None:
    if value in (None, b"", ""):
        return None
    return dt.datetime.fromtimestamp(float(value), dt.UTC)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _promotions(flat: list) -> list[Promotion]:
    return [
        Promotion(int(flat[i]), _from_ts(flat[i + 1]) or dt.datetime.now(dt.UTC))
        for i in range(0, len(flat) - 1, 2)
    ]


@dataclass(frozen=True)
class ApplyResult:
    """What a presence change found and did."""

    previous: AgentStatus
    applied: bool
    promoted: list[Promotion]


def apply(
    r: redis.Redis,
    agent_id: int,
    status: AgentStatus,
    queues: list[str],
    now: dt.datetime,
    *,
    idle_mode: str = "keep",
    wrap_up_until: dt.datetime | None = None,
    expect: tuple[AgentStatus, ...] = (),
    call_sid_guard: str | None = None,
    set_call_sid: str | None = None,
) -> ApplyResult:
    """Atomically move an agent to `status` and re-index it under `queues`.

    `idle_mode`: "keep" keeps an available agent's place in line, "now" sends it to the back,
    "prev" restores the place it had when claimed. With `expect`, nothing changes unless the
    current status is one of those; with `call_sid_guard`, nothing changes when the agent is
    known to be on a different call (a stale status callback).
    """
    if status is AgentStatus.WRAP_UP and wrap_up_until is None:
        raise ValueError("wrap_up needs wrap_up_until")
    out = _run(
        r,
        _APPLY,
        PREFIX,
        _ts(now),
        str(agent_id),
        status.value,
        idle_mode,
        _ts(wrap_up_until) if wrap_up_until else "",
        ",".join(queues),
        ",".join(s.value for s in expect),
        call_sid_guard or "",
        "-" if set_call_sid == "" else (set_call_sid or ""),
    )
    previous = AgentStatus(text(out[0]))
    return ApplyResult(previous, text(out[1]) == "1", _promotions(out[2:]))


def claim(r: redis.Redis, queue: str, now: dt.datetime,
          among: Iterable[int] | None = None) -> tuple[int | None, list[Promotion]]:
    """Atomically take the longest-idle available agent of `queue` and mark it busy; with
    `among`, only one of those agents (none when it is empty)."""
    chosen = ["among", *(str(agent_id) for agent_id in among)] if among is not None else [""]
    out = _run(r, _CLAIM, PREFIX, _ts(now), queue, *chosen)
    picked = text(out[0])
    return (int(picked) if picked else None), _promotions(out[1:])


def promote_expired(r: redis.Redis, now: dt.datetime) -> list[Promotion]:
    """Make every agent whose wrap-up has ended available; return who moved."""
    out = _run(r, _PROMOTE_ONLY, PREFIX, _ts(now))
    return _promotions(out)


def read(r: redis.Redis, agent_ids: list[int], now: dt.datetime) -> dict[int, Presence]:
    """Presence of each agent (offline when Redis knows nothing about it)."""
    pipe = r.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hgetall(f"{PREFIX}agent:{agent_id}")
    out: dict[int, Presence] = {}
    for agent_id, raw in zip(agent_ids, pipe.execute(), strict=True):
        out[agent_id] = _presence(raw, now)
    return out


def _presence(raw: dict, now: dt.datetime) -> Presence:
    fields = {text(k): text(v) for k, v in raw.items()}
    status = AgentStatus(fields.get("status") or "offline")
    since = _from_ts(fields.get("since"))
    idle = _from_ts(fields.get("idle_since"))
    wrap_until = _from_ts(fields.get("wrap_until"))
    if status is AgentStatus.WRAP_UP and wrap_until is not None and wrap_until <= now:
        # Not promoted yet, but already over: report what the next claim will see.
        status, since, idle, wrap_until = AgentStatus.AVAILABLE, wrap_until, wrap_until, None
    if status is not AgentStatus.AVAILABLE:
        idle = None
    return Presence(status, since, idle, wrap_until, fields.get("call_sid") or None)


def attach_call(r: redis.Redis, agent_id: int, call_sid: str) -> None:
    """Remember the call placed to a claimed agent, so stale status callbacks are ignored."""
    r.hset(f"{PREFIX}agent:{agent_id}", "call_sid", call_sid)


def forget(r: redis.Redis, agent_id: int) -> None:
    """Drop an agent's presence entirely (after it is removed from the roster)."""
    apply(r, agent_id, AgentStatus.OFFLINE, [], dt.datetime.now(dt.UTC))
    r.delete(f"{PREFIX}agent:{agent_id}")


def counts(r: redis.Redis, queue: str, now: dt.datetime) -> tuple[int, int]:
    """(staffed, available) agents of `queue` in one round trip."""
    pipe = r.pipeline(transaction=True)
    pipe.scard(f"{PREFIX}staffed:{queue}")
    pipe.zcard(f"{PREFIX}avail:{queue}")
    pipe.zcount(f"{PREFIX}wrap:{queue}", "-inf", _ts(now))
    staffed, available, wrap_done = pipe.execute()
    return int(staffed), int(available) + int(wrap_done)


def mark_restored(r: redis.Redis) -> bool:
    """True exactly once per Redis dataset: whoever gets it rebuilds presence from SQL."""
    return bool(r.set(f"{PREFIX}restored", "1", nx=True))
