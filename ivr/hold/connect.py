"""Connect waiting callers to free agents: claim an agent, ring them, whisper who is waiting.

Where it runs: on every wait-URL request that sees a free agent (so an agent who signs in or
ends a wrap-up is used within one announcement interval), and right after an agent call ends,
is declined or is not answered (so the next agent is tried at once). One pass per queue runs at
a time (a short Redis lock) and each agent is taken with the atomic `claim_agent`, so two web
processes never ring two agents for one caller, nor one agent twice.

How many to ring: the free agents are matched against the front of the shared line. Callbacks
there are the callback dispatcher's; live callers are ours, minus those an agent is already
being offered (an "offer" lives from the ring until the bridge or the agent call's end).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time

import redis
from flask import Flask

from ivr.errors import IvrError
from ivr.hold import holding
from ivr.infra import line, paths
from ivr.infra.agents import attach_call, claim_agent, decline_agent, dial_address, presence
from ivr.infra.agents.models import Agent
from ivr.infra.services import services_of

log = logging.getLogger(__name__)

OFFERS = "ivr:hold:offers:{queue}"  # sorted set: agent call SID -> expiry (epoch seconds)
OFFER = "ivr:hold:offer:{sid}"  # hash: queue, agent_id, caller_sid, placed_at, bridged_at
LOCK = "ivr:hold:connect:{queue}"
RING_SECONDS = 20
# An offer still open this long after the ring (no status callback came) is given up.
OFFER_SECONDS = 180


def connect_agents(app: Flask, queue: str, now: dt.datetime | None = None) -> list[str]:
    """Ring free agents for the live callers at the front of `queue`; return the call SIDs."""
    r: redis.Redis = app.extensions["ivr.redis"]
    now = now or services_of(app).now()
    token = secrets.token_hex(8)
    lock = LOCK.format(queue=queue)
    if not r.set(lock, token, nx=True, px=15_000):
        return []  # another pass is connecting this queue right now
    try:
        return _connect(app, r, queue, now)
    finally:
        if r.get(lock) == token.encode():
            r.delete(lock)


def _connect(app: Flask, r: redis.Redis, queue: str, now: dt.datetime) -> list[str]:
    offers_key = OFFERS.format(queue=queue)
    r.zremrangebyscore(offers_key, "-inf", time.time())
    open_offers = [_s(x) for x in r.zrange(offers_key, 0, -1)]
    _staffed, free = presence.counts(r, queue, now)
    if free <= 0:
        return []
    front = line.head(r, queue, free + len(open_offers))
    live = holding.drop_ghosts(r, queue, [i for kind, i, _score in front if kind == "caller"])
    offered = {_s(r.hget(OFFER.format(sid=s), "caller_sid") or b"") for s in open_offers}
    targets = [sid for sid in live if sid not in offered]
    placed: list[str] = []
    for target in targets[: max(0, len(live) - len(open_offers))]:
        agent = claim_agent(app.extensions["ivr.db"], r, queue, now)
        if agent is None:
            break
        sid = _ring(app, r, agent, queue, target, now)
        if sid is None:
            break
        placed.append(sid)
    return placed


def _ring(app: Flask, r: redis.Redis, agent: Agent, queue: str, caller_sid: str,
          now: dt.datetime) -> str | None:
    services = services_of(app)
    params = {"queue": queue, "agent": agent.id}
    try:
        sid = services.telephony.place_call(
            to=dial_address(agent), from_=app.config.get("TWILIO_FROM_NUMBER") or "",
            url=services.urls.url(paths.HOLD_AGENT, **params),
            status_callback=services.urls.url(paths.HOLD_AGENT_STATUS, **params),
            timeout=int(app.config.get("HOLD_AGENT_RING_SECONDS") or RING_SECONDS),
        )
    except IvrError as exc:
        # The provider refused (or no public URL could be built): the agent did nothing
        # wrong, so they stay available.
        log.error("could not ring agent", extra={"agent_id": agent.id, "error": str(exc)})
        decline_agent(app.extensions["ivr.db"], r, agent.id, now=now)
        return None
    attach_call(r, agent.id, sid)
    pipe = r.pipeline(transaction=False)
    pipe.zadd(OFFERS.format(queue=queue), {sid: time.time() + OFFER_SECONDS})
    pipe.hset(OFFER.format(sid=sid), mapping={"queue": queue, "agent_id": str(agent.id),
                                               "caller_sid": caller_sid,
                                               "placed_at": repr(now.timestamp())})
    pipe.expire(OFFER.format(sid=sid), 4 * 3600)
    pipe.execute()
    log.info("ringing agent", extra={"agent_id": agent.id, "queue": queue, "call_sid": sid,
                                     "for_caller": caller_sid})
    return sid


def offer_of(r: redis.Redis, agent_call_sid: str) -> dict[str, str]:
    """The open offer made by the call to an agent (empty when unknown)."""
    return {_s(k): _s(v) for k, v in r.hgetall(OFFER.format(sid=agent_call_sid)).items()}


def close_offer(r: redis.Redis, queue: str, agent_call_sid: str, **fields: str) -> None:
    """The offer no longer holds a caller's turn (bridged, declined or ended)."""
    pipe = r.pipeline(transaction=False)
    pipe.zrem(OFFERS.format(queue=queue), agent_call_sid)
    if fields:
        pipe.hset(OFFER.format(sid=agent_call_sid), mapping=fields)
    pipe.execute()


def whisper_target(r: redis.Redis, queue: str, offer: dict[str, str]) -> str:
    """The caller the agent will most likely get: the one rung for, if still in line, else
    the front of the line (<Dial><Queue> bridges Twilio's longest-waiting caller)."""
    key = line.CALLERS.format(queue=queue)
    target = offer.get("caller_sid", "")
    if target and r.zscore(key, target) is not None:
        return target
    front = r.zrange(key, 0, 0)
    return _s(front[0]) if front else target


def someone_waiting(r: redis.Redis, queue: str) -> bool:
    """True when a live caller is still in line for `queue`."""
    return r.zcard(line.CALLERS.format(queue=queue)) > 0


# --- the whisper -------------------------------------------------------------------------------


def whisper(app: Flask, queue: str, caller_sid: str, now: dt.datetime) -> str:
    """What the agent hears: queue, what the caller said and pressed, variables, wait, history.

    e.g. "Billing. Said 'refund'. Pressed 2. Order number 1 2 3 4 5. Waited 3 minutes.
    Returning caller."
    """
    from ivr.core.callstate import StateStore

    r = app.extensions["ivr.redis"]
    parts = [queue.replace("_", " ").capitalize() + "."]
    said, pressed = _inputs(app, caller_sid)
    if said:
        parts.append(f"Said '{said[-1]}'.")
    if pressed:
        parts.append(f"Pressed {', '.join(pressed[-3:])}.")
    state = StateStore(r, int(app.config["CALL_STATE_TTL"])).load(caller_sid)
    if state is not None:
        for name, value in state.vars.items():
            if name.startswith("_") or name.startswith("first_asked"):
                continue
            spoken = " ".join(value) if value.isdigit() else value
            parts.append(f"{name.replace('_', ' ').capitalize()} {spoken}.")
    holder = holding.load(r, caller_sid)
    if holder is not None:
        minutes = int(max(0.0, now.timestamp() - holder.first_asked) // 60)
        parts.append("Waited less than a minute." if minutes < 1 else
                     f"Waited {minutes} minute{'s' if minutes != 1 else ''}.")
    if state is not None and state.returning:
        parts.append("Returning caller.")
    return " ".join(parts)


def _inputs(app: Flask, caller_sid: str) -> tuple[list[str], list[str]]:
    """Words the caller said and keys they pressed in the menus, oldest first."""
    from sqlalchemy import select

    from ivr.infra import journey
    from ivr.infra.models import Call, CallEvent

    db, r = app.extensions["ivr.db"], app.extensions["ivr.redis"]
    try:
        journey.flush(db, r)  # the writer thread may not have caught up with this call yet
    except Exception:
        log.warning("journey flush before the whisper failed", exc_info=True)
    said: list[str] = []
    pressed: list[str] = []
    with db.session() as session:
        rows = session.execute(
            select(CallEvent.kind, CallEvent.digits, CallEvent.speech_text)
            .join(Call, Call.id == CallEvent.call_id)
            .where(Call.call_sid == caller_sid, CallEvent.kind.in_(("digits", "speech")))
            .order_by(CallEvent.seq)
        ).all()
    for kind, digits, text in rows:
        if kind == "speech" and text:
            said.append(text)
        elif kind == "digits" and digits:
            pressed.append(" ".join(digits))
    return said, pressed


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
