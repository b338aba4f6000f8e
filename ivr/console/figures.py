"""The wallboard's figures, read from where the service keeps them, per queue and overall.

Live state comes from Redis: the shared line (`ivr.infra.line`), each holder's record
(`ivr.hold.holding`: when they joined, the band they were last told), agents' presence, and the
open agent offers (`ivr.hold.connect`: an agent being rung). Today's figures come from SQL:
the hold visits that ended since local midnight in the flows' home time zone (the same
definitions as `ivr report`: service level is visits answered within the queue's target over
all visits), the estimates scored on them, and callback requests by state; the number of
callers who pressed 0 comes from `ivr.infra.today`.

Everything is plain JSON-ready data, so one snapshot can be shared by every open wallboard
(`ivr.console.stream.shared`) and exported to /metrics.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict

from sqlalchemy import case, func, select

from callback.models import CallbackRequest, CallbackStatus
from ivr.core.hours import home_zone, start_of_day
from ivr.hold import holding
from ivr.hold.connect import OFFER, OFFERS
from ivr.infra import line, today
from ivr.infra.agents import AgentStatus, list_agents
from ivr.infra.models import Call, CallEvent
from ivr.infra.queue_models import QueueVisit, WaitEstimate
from ivr.infra.redis_conn import decoded, text
from ivr.infra.services import Services

AGENT_STATES = ("available", "ringing", "on_call", "wrap_up", "offline")
DUE = (CallbackStatus.PENDING_ENQUEUE, CallbackStatus.WAITING, CallbackStatus.DISPATCHED)
LISTED_CALLERS = 50  # waiting callers listed per queue (the count covers them all)
_PRESENCE = {AgentStatus.AVAILABLE: "available", AgentStatus.BUSY: "on_call",
             AgentStatus.WRAP_UP: "wrap_up", AgentStatus.OFFLINE: "offline"}


def snapshot(services: Services) -> dict:
    """Every figure the wallboard shows, as JSON-ready data (see the module's docstring)."""
    now = services.now()
    flows = services.flows.current().file
    zone = home_zone(flows)
    day = start_of_day(now, zone)
    names = list(flows.queues)
    agents = _agents(services, names, now)
    visits = _visits_today(services, day)
    callbacks = _callbacks(services)
    queues = []
    for name in names:
        queue = flows.queues[name]
        waiting = _waiting(services, name, now)
        queues.append({
            "name": name,
            "label": _label(queue.label, name, flows.defaults.language),
            "waiting": waiting["count"],
            "longest_since": waiting["longest_since"],
            "callers": waiting["callers"],
            "agents": agents["by_queue"][name],
            "target_seconds": queue.service_level.seconds,
            "goal": queue.service_level.goal / 100,
            **_day_figures(visits.get(name, []), queue.service_level.seconds),
            "callbacks_due": callbacks[name]["due"],
            "callbacks_scheduled": callbacks[name]["scheduled"],
        })
    return {
        "now": now.timestamp(),
        "zone": zone,
        "day_start": day.isoformat(),
        "queues": queues,
        "total": _total(queues, agents["overall"], visits, flows),
        "escapes_today": today.count_since(services.redis, today.ESCAPES, day.timestamp()),
    }


def _label(label, name: str, language: str) -> str:
    if isinstance(label, dict):
        return label.get("en") or label.get(language) or next(iter(label.values()), name)
    return label or name


# --- live: who waits, who is free -----------------------------------------------------------


def _waiting(services: Services, queue: str, now: dt.datetime) -> dict:
    """The live callers of `queue` (ghosts left out), each with their place in the shared line."""
    r = services.redis
    pipe = r.pipeline(transaction=False)
    pipe.zrange(line.CALLERS.format(queue=queue), 0, -1, withscores=True)
    pipe.zrange(line.CALLBACKS.format(queue=queue), 0, -1, withscores=True)
    callers, callbacks = pipe.execute()
    sids = [text(m) for m, _ in callers]
    pipe = r.pipeline(transaction=False)
    for sid in sids:
        pipe.hgetall(holding.RECORD.format(sid=sid))
    records = pipe.execute() if sids else []
    holders = [holding.Holder.from_hash(sid, raw)
               for sid, raw in zip(sids, records, strict=True) if raw]
    # A place counts the callers and due callbacks who asked first (`line.place_of`).
    asks = sorted([h.first_asked for h in holders] + [float(s) for _, s in callbacks])
    inputs = _inputs(services, [h.call_sid for h in holders[:LISTED_CALLERS]])
    listed = []
    for holder in holders[:LISTED_CALLERS]:
        ann = holder.announcement
        listed.append({
            "sid": holder.call_sid,
            "caller": holder.caller,
            "language": holder.language,
            "since": holder.first_asked,
            "place": sum(1 for a in asks if a < holder.first_asked) + 1,
            "band": ann.band.phrase if ann else "",
            "inputs": inputs.get(holder.call_sid, []),
        })
    return {"count": len(holders),
            "longest_since": min((h.first_asked for h in holders), default=None),
            "callers": listed}


def _inputs(services: Services, sids: list[str]) -> dict[str, list[str]]:
    """What each caller pressed or said, in order ("pressed 2", "said 'refund'")."""
    if not sids:
        return {}
    out: dict[str, list[str]] = defaultdict(list)
    with services.db.session() as session:
        rows = session.execute(
            select(Call.call_sid, CallEvent.kind, CallEvent.digits, CallEvent.speech_text)
            .join(CallEvent, CallEvent.call_id == Call.id)
            .where(Call.call_sid.in_(sids), CallEvent.kind.in_(("digits", "speech")))
            .order_by(Call.call_sid, CallEvent.seq))
        for sid, kind, digits, speech in rows:
            if kind == "speech" and speech:
                out[sid].append(f"said “{speech}”")
            elif kind == "digits" and digits:
                out[sid].append(f"pressed {digits}")
    return out


def _agents(services: Services, names: list[str], now: dt.datetime) -> dict:
    """Agents by state, per queue they serve and overall (each agent once): an agent with an
    open offer for a holding caller is ringing; busy otherwise means on a call."""
    ringing = _ringing(services, names)
    entries = list_agents(services.db, services.redis, now)
    by_queue = {name: dict.fromkeys(AGENT_STATES, 0) for name in names}
    overall = dict.fromkeys(AGENT_STATES, 0)
    for entry in entries:
        if not entry.agent.active:
            continue
        state = _PRESENCE[entry.presence.status]
        if state == "on_call" and entry.agent.id in ringing:
            state = "ringing"
        overall[state] += 1
        for name in entry.agent.queues or []:
            if name in by_queue:
                by_queue[name][state] += 1
    return {"by_queue": by_queue, "overall": overall}


def _ringing(services: Services, names: list[str]) -> set[int]:
    r = services.redis
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.zrangebyscore(OFFERS.format(queue=name), time.time(), "+inf")
    offer_sids = [text(s) for found in pipe.execute() for s in found]
    pipe = r.pipeline(transaction=False)
    for sid in offer_sids:
        pipe.hgetall(OFFER.format(sid=sid))
    ringing = set()
    for raw in pipe.execute() if offer_sids else []:
        offer = decoded(raw)
        if offer.get("agent_id", "").isdigit() and not offer.get("bridged_at"):
            ringing.add(int(offer["agent_id"]))
    return ringing


# --- today: SQL -------------------------------------------------------------------------------


def _visits_today(services: Services, day: dt.datetime) -> dict[str, list[tuple]]:
    """(outcome, wait, estimates scored, estimates within band) of each visit ended today."""
    within = (select(WaitEstimate.visit_id,
                     func.count(WaitEstimate.id).label("scored"),
                     func.sum(case((WaitEstimate.within_band, 1), else_=0)).label("kept"))
              .where(WaitEstimate.within_band.is_not(None))
              .group_by(WaitEstimate.visit_id).subquery())
    out: dict[str, list[tuple]] = defaultdict(list)
    with services.db.session() as session:
        rows = session.execute(
            select(QueueVisit.queue, QueueVisit.outcome, QueueVisit.wait_seconds,
                   within.c.scored, within.c.kept)
            .outerjoin(within, within.c.visit_id == QueueVisit.id)
            .where(QueueVisit.left_at >= day))
        for queue, outcome, wait, scored, kept in rows:
            out[queue].append((outcome, wait, int(scored or 0), int(kept or 0)))
    return out


def _day_figures(visits: list[tuple], target_seconds: float) -> dict:
    total = len(visits)
    answered = [wait for outcome, wait, _s, _k in visits if outcome == "answered"]
    scored = sum(s for *_rest, s, _k in visits)
    kept = sum(k for *_rest, k in visits)
    return {
        "visits": total,
        "answered": len(answered),
        "abandoned": sum(1 for outcome, *_ in visits if outcome == "abandoned"),
        "answered_in_target": sum(1 for wait in answered if wait <= target_seconds),
        "service_level": (sum(1 for w in answered if w <= target_seconds) / total
                          if total else None),
        "estimates_scored": scored,
        "estimate_accuracy": kept / scored if scored else None,
    }


def _callbacks(services: Services) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    with services.db.session() as session:
        rows = session.execute(
            select(CallbackRequest.queue, CallbackRequest.status, func.count())
            .where(CallbackRequest.status.in_([*DUE, CallbackStatus.SCHEDULED]))
            .group_by(CallbackRequest.queue, CallbackRequest.status))
        for queue, status, count in rows:
            out[queue]["scheduled" if status == CallbackStatus.SCHEDULED else "due"] += count
    return out


def _total(queues: list[dict], agents: dict, visits: dict[str, list[tuple]], flows) -> dict:
    """All queues together: sums, the longest wait, and today's shares over every visit."""
    everything = [v for name in visits for v in visits[name] if name in flows.queues]
    answered_in_target = sum(q["answered_in_target"] for q in queues)
    figures = _day_figures(everything, float("inf"))
    figures["answered_in_target"] = answered_in_target
    figures["service_level"] = (answered_in_target / figures["visits"]
                                if figures["visits"] else None)
    waits = [q["longest_since"] for q in queues if q["longest_since"] is not None]
    return {
        "waiting": sum(q["waiting"] for q in queues),
        "longest_since": min(waits, default=None),
        "agents": agents,
        **figures,
        "callbacks_due": sum(q["callbacks_due"] for q in queues),
        "callbacks_scheduled": sum(q["callbacks_scheduled"] for q in queues),
    }
