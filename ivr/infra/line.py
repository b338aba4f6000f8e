"""One line per queue, shared by live hold-queue callers and callbacks, ordered by first ask.

Two Redis sorted sets per queue, scored by the epoch second a person first asked for help:
`ivr:line:{queue}:callers` (CallSids of callers holding) and `ivr:line:{queue}:callbacks`
(callback request ids that are due). A person's place is the number of entries of both sets
with an earlier score, plus one: two ZCOUNTs, O(log n), so a lookup stays cheap with 10,000
waiting. A caller who leaves the live line for a callback offer keeps their place: the line
remembers their score for a while (`keep_place`), and the callback they ask for, or their
return to the queue, takes it up (`kept_place`).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr.infra.redis_conn import text

CALLERS = "ivr:line:{queue}:callers"
CALLBACKS = "ivr:line:{queue}:callbacks"
KEPT = "ivr:line:{queue}:kept:{sid}"
# A caller in line also has a hold record (`ivr.hold.holding`), kept alive by the wait URL and
# expiring when it stops: a caller without one is a ghost (their hang-up was never reported).
HOLD_RECORD = "ivr:hold:caller:{sid}"
# Long enough to hear a callback offer and answer it, or to come back to the queue.
KEPT_SECONDS = 15 * 60


@dataclass(frozen=True)
class Place:
    """Where someone stands: callers and callbacks with an earlier first ask."""

    callers_ahead: int
    callbacks_ahead: int

    @property
    def position(self) -> int:
        """1 = next to be served."""
        return self.callers_ahead + self.callbacks_ahead + 1


def join_callback(r: redis.Redis, queue: str, request_id: int, first_asked: float) -> None:
    """Put a due callback in line (keeps an existing place)."""
    r.zadd(CALLBACKS.format(queue=queue), {str(request_id): first_asked}, nx=True)


def leave_callback(r: redis.Redis, queue: str, request_id: int) -> None:
    """Take a callback out of line (being dialled, done or cancelled)."""
    r.zrem(CALLBACKS.format(queue=queue), str(request_id))


def join_caller(r: redis.Redis, queue: str, call_sid: str, first_asked: float) -> None:
    """Put a live hold-queue caller in line."""
    r.zadd(CALLERS.format(queue=queue), {call_sid: first_asked}, nx=True)


def leave_caller(r: redis.Redis, queue: str, call_sid: str) -> None:
    """Take a live caller out of line (answered or hung up)."""
    r.zrem(CALLERS.format(queue=queue), call_sid)


def keep_place(r: redis.Redis, queue: str, call_sid: str, first_asked: float) -> None:
    """Remember where a caller who just left the live line stood (for a callback offer)."""
    r.set(KEPT.format(queue=queue, sid=call_sid), repr(first_asked), ex=KEPT_SECONDS)


def kept_place(r: redis.Redis, queue: str, call_sid: str) -> float | None:
    """When a caller first asked: from the live line if they are in it, else their kept place."""
    pipe = r.pipeline(transaction=False)
    pipe.zscore(CALLERS.format(queue=queue), call_sid)
    pipe.get(KEPT.format(queue=queue, sid=call_sid))
    live, kept = pipe.execute()
    if live is not None:
        return float(live)
    return float(kept) if kept is not None else None


def place_of(r: redis.Redis, queue: str, first_asked: float) -> Place:
    """The place of someone who first asked at `first_asked`."""
    pipe = r.pipeline(transaction=False)
    bound = f"({first_asked!r}"
    pipe.zcount(CALLERS.format(queue=queue), "-inf", bound)
    pipe.zcount(CALLBACKS.format(queue=queue), "-inf", bound)
    callers, callbacks = pipe.execute()
    return Place(int(callers), int(callbacks))


def head(r: redis.Redis, queue: str, n: int) -> list[tuple[str, str, float]]:
    """The first `n` people in line as (kind, id, score), kind 'caller' or 'callback'."""
    pipe = r.pipeline(transaction=False)
    pipe.zrange(CALLERS.format(queue=queue), 0, n - 1, withscores=True)
    pipe.zrange(CALLBACKS.format(queue=queue), 0, n - 1, withscores=True)
    callers, callbacks = pipe.execute()
    merged = [("caller", text(m), s) for m, s in callers]
    merged += [("callback", text(m), s) for m, s in callbacks]
    merged.sort(key=lambda e: (e[2], e[0] == "callback"))
    return merged[:n]


def live_head(r: redis.Redis, queue: str, n: int) -> list[tuple[str, str, float]]:
    """`head`, after taking out of the line the callers at its front who are ghosts."""
    for _ in range(3):  # each round removes the ghosts it saw; more may stand behind them
        front = head(r, queue, n)
        callers = [ident for kind, ident, _score in front if kind == "caller"]
        if not callers:
            return front
        pipe = r.pipeline(transaction=False)
        for sid in callers:
            pipe.exists(HOLD_RECORD.format(sid=sid))
        ghosts = [sid for sid, here in zip(callers, pipe.execute(), strict=True) if not here]
        if not ghosts:
            return front
        r.zrem(CALLERS.format(queue=queue), *ghosts)
    return head(r, queue, n)


def waiting_callbacks(r: redis.Redis, queue: str) -> set[str]:
    """Ids of every callback in line (for the sweeper's repair pass)."""
    return {text(m) for m in r.zrange(CALLBACKS.format(queue=queue), 0, -1)}
