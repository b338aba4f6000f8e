"""Connect waiting callers to free agents: claim an agent, ring them, whisper who is waiting.

Where it runs: on every wait-URL request that sees a free agent (so an agent who signs in or
ends a wrap-up is used within one announcement interval), and right after an agent call ends,
is declined or is not answered (so the next agent is tried at once). One pass per queue runs at
a time (a short Redis lock) and each agent is taken with the atomic `claim_agent`, so two web
processes never ring two agents for one caller, nor one agent twice.

How many to ring: the free agents are matched against the front of the shared line. Callbacks
there are the callback dispatcher's; live callers are ours, minus those an agent is already
being offered (an "offer" lives from the ring until the bridge or the agent call's end).

Languages: a caller who has waited less than the queue's `language_wait` is rung only agents
who speak their language (an agent who listed none speaks the flows' default language); after
that, any free agent. A caller nobody free speaks is passed over, not a wall: the callers
behind them can be served meanwhile, because each language waits in a Twilio queue of its own
(`twilio_queue`), and `<Dial><Queue>` bridges the longest-waiting caller of the queue it names.
The wait URL runs a pass on every round while an agent is free, so once `language_wait` is
over the next round rings anyone for them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import redis
from flask import Flask
from redis.exceptions import LockError

from ivr.core.flows.schema import Queue
from ivr.core.i18n.languages import twilio_queue
from ivr.errors import IvrError, TelephonyUnsure
from ivr.hold import holding
from ivr.infra import line, live, paths
from ivr.infra.agents import (
    attach_call,
    claim_agent,
    decline_agent,
    dial_address,
    presence,
    roster,
    speaks,
)
from ivr.infra.agents.models import Agent
from ivr.infra.redis_conn import text
from ivr.infra.services import services_of

log = logging.getLogger(__name__)

OFFERS = "ivr:hold:offers:{queue}"  # sorted set: agent call SID -> expiry (epoch seconds)
OFFER = "ivr:hold:offer:{sid}"  # hash: queue, agent_id, caller_sid, placed_at, bridged_at
LOCK = "ivr:hold:connect:{queue}"
RING_SECONDS = 20
# An offer still open this long after the ring (no status callback came) is given up.
OFFER_SECONDS = 180
# How many callers past the ones free agents could take are looked at for a language match.
LOOK_BEHIND = 20


def connect_agents(app: Flask, queue: str, now: dt.datetime | None = None) -> list[str]:
    """Ring free agents for the live callers at the front of `queue`; return the call SIDs."""
    r: redis.Redis = services_of(app).redis
    now = now or services_of(app).now()
    lock = r.lock(LOCK.format(queue=queue), timeout=15, blocking=False)
    if not lock.acquire():
        return []  # another pass is connecting this queue right now
    try:
        return _connect(app, r, queue, now)
    finally:
        try:
            lock.release()  # token-checked and atomic (redis-py's Lock)
        except LockError:
            log.warning("the connect lock for %s expired during a pass", queue)


def _connect(app: Flask, r: redis.Redis, queue: str, now: dt.datetime) -> list[str]:
    offers_key = OFFERS.format(queue=queue)
    r.zremrangebyscore(offers_key, "-inf", time.time())
    open_offers = [text(x) for x in r.zrange(offers_key, 0, -1)]
    _staffed, free = presence.counts(r, queue, now)
    if free <= 0:
        return []
    # Callers waiting for their language are passed over, so look a little further back.
    front = line.live_head(r, queue, free + len(open_offers) + LOOK_BEHIND)
    live = [ident for kind, ident, _score in front if kind == "caller"]
    offered = {text(r.hget(OFFER.format(sid=s), "caller_sid") or b"") for s in open_offers}
    targets = [sid for sid in live if sid not in offered]
    # An agent still ringing for a caller who has left takes the next caller of that language
    # (`whisper_target`): ring nobody else for that caller.
    orphans = sum(1 for sid in offered if r.zscore(line.CALLERS.format(queue=queue), sid) is None)
    choose = _Speakers(app, queue)
    placed: list[str] = []
    for target in targets[orphans:]:
        if len(placed) >= free:
            break
        among = choose.among(r, target, now)
        agent = claim_agent(services_of(app).db, r, queue, now, among=among)
        if agent is None:
            if among is None:
                break  # nobody is free at all
            log.debug("caller waits for an agent who speaks their language",
                      extra={"queue": queue, "call_sid": target})
            continue  # the callers behind may speak a free agent's language
        sid = _ring(app, r, agent, queue, target, now)
        if sid is None:
            break
        placed.append(sid)
    return placed


class _Speakers:
    """Which agents may be rung for a caller: the queue's settings and roster, read once a pass."""

    def __init__(self, app: Flask, queue: str) -> None:
        self.app, self.queue = app, queue
        flows = services_of(app).flows.current().file
        self.default_language = flows.defaults.language
        self.language_wait = (flows.queues.get(queue) or Queue()).language_wait
        self._roster: list[Agent] | None = None

    def among(self, r: redis.Redis, caller_sid: str, now: dt.datetime) -> list[int] | None:
        """The ids of the agents who speak the caller's language while they may still wait
        for one; None (anyone) once `language_wait` is over."""
        holder = holding.load(r, caller_sid)
        if holder is None or now.timestamp() - holder.first_asked >= self.language_wait:
            return None
        if self._roster is None:
            self._roster = roster(services_of(self.app).db, queue=self.queue)
        return [a.id for a in self._roster
                if speaks(a, holder.language, self.default_language)]


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
    except TelephonyUnsure as exc:
        # Their phone may be ringing: they stay claimed, and the call's status callbacks
        # attach it (a busy agent with no call is freed by hand: `ivr agents status`).
        log.error("ringing an agent is unconfirmed: they stay busy until its status "
                  "callbacks come", extra={"agent_id": agent.id, "error": str(exc)})
        return None
    except IvrError as exc:
        # The provider refused (or no public URL could be built): the agent did nothing
        # wrong, so they stay available.
        log.error("could not ring agent", extra={"agent_id": agent.id, "error": str(exc)})
        decline_agent(services_of(app).db, r, agent.id, now=now)
        return None
    attach_call(r, agent.id, sid)
    pipe = r.pipeline(transaction=True)  # the offer and its place in OFFERS appear together
    pipe.zadd(OFFERS.format(queue=queue), {sid: time.time() + OFFER_SECONDS})
    holder = holding.load(r, caller_sid)
    pipe.hset(OFFER.format(sid=sid), mapping={
        "queue": queue, "agent_id": str(agent.id), "caller_sid": caller_sid,
        "placed_at": repr(now.timestamp()),
        # Should the caller leave before the agent answers, the agent takes the next caller
        # of the same Twilio queue: one of the language they were rung for.
        "twilio_queue": _twilio_queue_of(app, queue, holder)})
    pipe.expire(OFFER.format(sid=sid), 4 * 3600)
    pipe.execute()
    live.changed(r, "offer", agent_id=agent.id)  # their console pops up the caller now
    log.info("ringing agent", extra={"agent_id": agent.id, "queue": queue, "call_sid": sid,
                                     "for_caller": caller_sid})
    return sid


def offer_of(r: redis.Redis, agent_call_sid: str) -> dict[str, str]:
    """The open offer made by the call to an agent (empty when unknown)."""
    return {text(k): text(v) for k, v in r.hgetall(OFFER.format(sid=agent_call_sid)).items()}


def close_offer(r: redis.Redis, queue: str, agent_call_sid: str, **fields: str) -> None:
    """The offer no longer holds a caller's turn (bridged, declined or ended)."""
    pipe = r.pipeline(transaction=False)
    pipe.zrem(OFFERS.format(queue=queue), agent_call_sid)
    if fields:
        pipe.hset(OFFER.format(sid=agent_call_sid), mapping=fields)
    pipe.execute()


def _twilio_queue_of(app: Flask, queue: str, holder: holding.Holder | None) -> str:
    if holder is not None and holder.twilio_queue:
        return holder.twilio_queue
    default = services_of(app).flows.current().file.defaults.language
    return twilio_queue(queue, holder.language if holder else "", default)


def bridge_queue(app: Flask, queue: str, caller_sid: str, offer: dict[str, str]) -> str:
    """The Twilio queue an agent taking `caller_sid` dials: the one the caller waits in."""
    holder = holding.load(services_of(app).redis, caller_sid) if caller_sid else None
    if holder is None and offer.get("twilio_queue"):
        return offer["twilio_queue"]
    return _twilio_queue_of(app, queue, holder)


def whisper_target(r: redis.Redis, queue: str, offer: dict[str, str], agent_call: str) -> str:
    """The caller the agent will get: the one rung for, if still in line; else the first in
    line waiting in the same Twilio queue (the same language) and offered to nobody else, who
    is who <Dial><Queue> bridges. "" when nobody is left there. The agent can answer before
    their offer is written (it is written once the provider names their call), so an empty
    `offer` is read again once, and their own call never counts as another's offer."""
    key = line.CALLERS.format(queue=queue)
    offer = offer or offer_of(r, agent_call)
    target = offer.get("caller_sid", "")
    if target and r.zscore(key, target) is not None:
        return target
    offers = [text(s) for s in r.zrange(OFFERS.format(queue=queue), 0, -1)
              if text(s) != agent_call]
    taken = {text(r.hget(OFFER.format(sid=s), "caller_sid") or b"") for s in offers}
    wanted = offer.get("twilio_queue")
    for sid in (text(x) for x in r.zrange(key, 0, LOOK_BEHIND)):
        held = holding.load(r, sid)
        in_queue = held.twilio_queue if held and held.twilio_queue else queue
        if sid not in taken and (not wanted or in_queue == wanted):
            return sid
    return ""
