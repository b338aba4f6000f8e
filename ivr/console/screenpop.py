"""The screen pop: what an agent is shown of a call offered to them, or one they took.

Plain data, read from what the service already keeps: the caller's hold record and call state
(`ivr.hold.whisper.caller_context`, the facts the whisper reads out), the journey tables (the
nodes they went through, the keys they pressed, the words heard and how sure the recogniser
was, and their earlier calls), the hold-queue offer that rang the agent (`ivr.hold.connect`)
and, for callbacks, the request and its attempt. Nothing here renders HTML.

A call is an agent's when they answered its hold-queue visit (`QueueVisit.agent_id`), took its
callback attempt, or are offered it or on it now; the calls they took whose visit is not
written yet are found through the agent calls named in their presence history, whose offers
say which caller they were bridged to. Calls are named by the caller's call SID (a callback by
the SID of the leg we placed), as the journey and the notes name them.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import asdict, dataclass, field

from sqlalchemy import func, select

from callback.lifecycle import OPEN_ATTEMPT
from callback.models import AttemptStatus, CallbackAttempt, CallbackRequest
from ivr.core.flows.naming import language_name, queue_label
from ivr.core.hours import home_zone
from ivr.core.i18n.catalog import SOURCE_LANGUAGE, Phrasebook
from ivr.hold import connect
from ivr.hold.whisper import caller_context, var_name
from ivr.infra.agents import AgentStatus, get_agent, get_presence
from ivr.infra.agents.models import AgentPresenceEvent
from ivr.infra.models import Call, CallEvent
from ivr.infra.queue_models import QueueVisit
from ivr.infra.redis_conn import text
from ivr.infra.services import Services

CALL_SID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
QUEUE_CALL, CALLBACK_CALL = "queue", "callback"
RECENT = 20  # calls listed under "My calls", and agent calls looked back on
# How a call of theirs ended, as an agent reads it (the journey's `Call.outcome`, or the
# hold-queue visit's outcome when there was one).
OUTCOMES = {
    "answered": "answered by an agent", "abandoned": "hung up while holding",
    "callback": "asked for a callback", "left": "left the queue", "queued": "went to a queue",
    "dialed": "was transferred", "voicemail": "left a voicemail",
    "hangup": "ended in the menus", "abandoned_in_ivr": "hung up in the menus",
}


@dataclass(frozen=True)
class Offer:
    """A call ringing an agent, or one they are on: a holding caller, or a callback."""

    kind: str  # QUEUE_CALL or CALLBACK_CALL
    agent_call_sid: str  # the call placed to the agent ("" for a callback not dialled yet)
    queue: str
    caller_sid: str  # the caller's call, whose journey it is ("" for a web callback)
    placed_at: float | None = None  # epoch seconds (the service's clock)
    bridged_at: float | None = None  # set once they talk
    attempt_id: int | None = None  # callbacks

    @property
    def is_on_call(self) -> bool:
        """Whether the agent is talking to the caller (not only rung)."""
        return self.bridged_at is not None

    @property
    def call_sid(self) -> str:
        """The name of the call in the agent's calls and notes."""
        return self.caller_sid if self.kind == QUEUE_CALL else self.agent_call_sid


@dataclass(frozen=True)
class Given:
    """Keys the caller pressed, or words they said, at one node."""

    kind: str  # "digits" or "speech"
    node: str
    value: str
    confidence: float | None = None  # speech only: the recogniser's, 0 to 1


@dataclass(frozen=True)
class Earlier:
    """The caller's calls before this one (same number)."""

    count: int = 0
    last_at: dt.datetime | None = None
    last_outcome: str | None = None  # as OUTCOMES words it


@dataclass(frozen=True)
class ScreenPop:
    """Everything the agent is shown about one call."""

    call_sid: str
    kind: str  # QUEUE_CALL or CALLBACK_CALL
    caller: str
    language: str
    language_name: str
    queue: str
    queue_label: str
    path: list[str] = field(default_factory=list)  # nodes entered, in order
    given: list[Given] = field(default_factory=list)
    entered: list[tuple[str, str]] = field(default_factory=list)  # (label, value)
    waited_seconds: float | None = None
    waiting_since: float | None = None  # epoch seconds, while the wait still grows
    started_at: dt.datetime | None = None
    earlier: Earlier = Earlier()
    name: str = ""  # callbacks: what the visitor gave
    reason: str = ""
    zone: str = "UTC"  # where its times are shown: the queue's calendar

    def to_dict(self) -> dict:
        """JSON-ready values."""
        return asdict(self)


# --- the call offered now ----------------------------------------------------------------


def current_offer(services: Services, agent_id: int) -> Offer | None:
    """The call ringing this agent now, or the one they are on; None when neither."""
    r = services.redis
    presence = get_presence(services.db, r, agent_id, services.now())
    if presence.status is not AgentStatus.BUSY:
        return None  # a claim makes them busy: an open offer to anyone else is stale
    if presence.call_sid:
        offer = _queue_offer(services, presence.call_sid, agent_id)
        if offer is not None:
            return offer
    # Rung, but the call is not attached to their presence yet: the open offers say so.
    now = time.time()  # OFFERS are scored by the system clock (see ivr.hold.connect)
    for queue in _queues(services, agent_id):
        for sid in r.zrangebyscore(connect.OFFERS.format(queue=queue), now, "+inf"):
            offer = _queue_offer(services, text(sid), agent_id)
            if offer is not None:
                return offer
    return _callback_offer(services, agent_id, presence.call_sid)


def _queue_offer(services: Services, agent_call_sid: str, agent_id: int) -> Offer | None:
    offer = connect.offer_of(services.redis, agent_call_sid)
    if not offer or offer.get("agent_id") != str(agent_id) or offer.get("declined"):
        return None
    queue = offer.get("queue", "")
    caller = offer.get("bridged_caller") or connect.whisper_target(
        services.redis, queue, offer, agent_call_sid) or offer.get("caller_sid", "")
    return Offer(QUEUE_CALL, agent_call_sid, queue, caller,
                 placed_at=_float(offer.get("placed_at")),
                 bridged_at=_float(offer.get("bridged_at")))


def _callback_offer(services: Services, agent_id: int, call_sid: str | None) -> Offer | None:
    with services.db.session() as session:
        query = (select(CallbackAttempt, CallbackRequest)
                 .join(CallbackRequest, CallbackRequest.id == CallbackAttempt.request_id)
                 .where(CallbackAttempt.agent_id == agent_id,
                        CallbackAttempt.status.in_([s.value for s in OPEN_ATTEMPT]))
                 .order_by(CallbackAttempt.id.desc()).limit(1))
        if call_sid:
            query = query.where(CallbackAttempt.call_sid == call_sid)
        row = session.execute(query).first()
    if row is None:
        return None
    attempt, req = row
    placed = (attempt.dialed_at or attempt.created_at).timestamp()
    # Answered: the customer picked up and they talk (when exactly is not kept).
    answered = attempt.state is AttemptStatus.ANSWERED
    return Offer(CALLBACK_CALL, attempt.call_sid or "", req.queue,
                 str((req.context or {}).get("call_sid") or ""), placed_at=placed,
                 bridged_at=placed if answered else None, attempt_id=attempt.id)


def _queues(services: Services, agent_id: int) -> list[str]:
    names = list(services.flows.current().file.queues)
    return names + [q for q in get_agent(services.db, agent_id).queues or [] if q not in names]


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


# --- what is shown ------------------------------------------------------------------------


def pop_of_offer(services: Services, offer: Offer) -> ScreenPop:
    """The screen pop of a call ringing an agent or one they are on."""
    if offer.kind == CALLBACK_CALL and offer.attempt_id is not None:
        return _callback_pop(services, offer.attempt_id)
    return queue_pop(services, offer.caller_sid, offer.queue, bridged_at=offer.bridged_at)


def pop_of_call(services: Services, agent_id: int, call_sid: str) -> ScreenPop | None:
    """The screen pop of one of the agent's calls; None when it is not theirs."""
    if not CALL_SID.match(call_sid or ""):
        return None
    offer = current_offer(services, agent_id)
    if offer is not None and offer.call_sid == call_sid:
        return pop_of_offer(services, offer)
    with services.db.session() as session:
        visit = session.scalar(select(QueueVisit).where(
            QueueVisit.call_sid == call_sid, QueueVisit.agent_id == agent_id)
            .order_by(QueueVisit.id.desc()).limit(1))
        attempt = session.scalar(select(CallbackAttempt).where(
            CallbackAttempt.agent_id == agent_id, CallbackAttempt.call_sid == call_sid)
            .order_by(CallbackAttempt.id.desc()).limit(1))
    if visit is not None:
        return queue_pop(services, call_sid, visit.queue, waited=visit.wait_seconds)
    if attempt is not None:
        return _callback_pop(services, attempt.id)
    taken = next((o for o in taken_offers(services, agent_id, offer)
                  if o.caller_sid == call_sid), None)
    if taken is not None:
        return queue_pop(services, call_sid, taken.queue, bridged_at=taken.bridged_at)
    return None


def queue_pop(services: Services, caller_sid: str, queue: str, *,
               bridged_at: float | None = None, waited: float | None = None) -> ScreenPop:
    now = services.now()
    known = caller_context(services, caller_sid, now, ended=True)
    flows = services.flows.current().file
    book = Phrasebook(flows.defaults.phrases)
    holder, state = known.holder, known.state
    waiting_since = None
    if waited is None and holder is not None:
        if bridged_at is not None:  # the wait ended when they were put through
            waited = max(0.0, bridged_at - holder.first_asked)
        else:
            waited, waiting_since = known.waited_seconds, holder.first_asked
    call, path, given = _journey(services, caller_sid)
    caller = ((holder.caller if holder else "") or (state.caller if state else "")
              or (call.caller if call else "") or "")
    queue = queue or (holder.queue if holder else "")
    return ScreenPop(
        call_sid=caller_sid, kind=QUEUE_CALL, caller=caller, language=known.language,
        language_name=language_name(book, SOURCE_LANGUAGE, known.language),
        queue=queue, queue_label=queue_label(flows, queue, SOURCE_LANGUAGE, capitalized=True),
        path=path, given=given,
        entered=[(var_name(book, SOURCE_LANGUAGE, k), v) for k, v in known.entered.items()],
        waited_seconds=waited, waiting_since=waiting_since,
        started_at=call.started_at if call else None,
        earlier=_earlier(services, caller, caller_sid, call.started_at if call else now),
        zone=zone_of(services, queue))


def _callback_pop(services: Services, attempt_id: int) -> ScreenPop:
    flows = services.flows.current().file
    book = Phrasebook(flows.defaults.phrases)
    with services.db.session() as session:
        attempt = session.get(CallbackAttempt, attempt_id)
        req = session.get(CallbackRequest, attempt.request_id)
    origin = str((req.context or {}).get("call_sid") or "")
    call, path, given = _journey(services, origin) if origin else (None, [], [])
    started = attempt.dialed_at or attempt.created_at
    language = req.language or flows.defaults.language
    return ScreenPop(
        call_sid=attempt.call_sid or "", kind=CALLBACK_CALL, caller=req.phone,
        language=language, language_name=language_name(book, SOURCE_LANGUAGE, language),
        queue=req.queue,
        queue_label=queue_label(flows, req.queue, SOURCE_LANGUAGE, capitalized=True),
        path=path, given=given,
        waited_seconds=max(0.0, (started - req.first_asked_at).total_seconds()),
        started_at=started, earlier=_earlier(services, req.phone, origin, started),
        name=req.name or "", reason=req.reason or "", zone=zone_of(services, req.queue))


def _journey(services: Services, call_sid: str) -> tuple[Call | None, list[str], list[Given]]:
    """The call's row, the nodes it entered and what the caller gave, oldest first."""
    with services.db.session() as session:
        call = session.scalar(select(Call).where(Call.call_sid == call_sid))
        if call is None:
            return None, [], []
        rows = session.execute(
            select(CallEvent.kind, CallEvent.node, CallEvent.digits, CallEvent.speech_text,
                   CallEvent.confidence)
            .where(CallEvent.call_id == call.id,
                   CallEvent.kind.in_(("enter", "digits", "speech")))
            .order_by(CallEvent.seq)).all()
    path: list[str] = []
    given: list[Given] = []
    for kind, node, digits, words, confidence in rows:
        if kind == "enter" and node:
            path.append(node.removeprefix("@"))  # "@operator": the escape to a person
        elif kind == "digits" and digits:
            given.append(Given("digits", node or "", digits))
        elif kind == "speech" and words:
            given.append(Given("speech", node or "", words, confidence))
    return call, path, given


def _earlier(services: Services, caller: str, call_sid: str, before: dt.datetime) -> Earlier:
    """The caller's calls from the same number before this one."""
    if not caller:
        return Earlier()
    mine = (Call.caller == caller, Call.call_sid != call_sid, Call.started_at < before)
    with services.db.session() as session:
        count = session.scalar(select(func.count()).select_from(Call).where(*mine)) or 0
        last = session.execute(select(Call.call_sid, Call.started_at, Call.outcome).where(*mine)
                               .order_by(Call.started_at.desc()).limit(1)).first()
        if last is None:
            return Earlier()
        visit = session.scalar(select(QueueVisit.outcome).where(QueueVisit.call_sid == last[0])
                               .order_by(QueueVisit.id.desc()).limit(1))
    said = visit or last[2]
    return Earlier(count, last[1], OUTCOMES.get(said or "", said))


def zone_of(services: Services, queue: str) -> str:
    """The time zone a queue's times are shown in: its calendar's, else the flows' home zone."""
    flows = services.flows.current().file
    settings = flows.queues.get(queue)
    calendar = flows.hours.get(settings.hours) if settings and settings.hours else None
    return calendar.timezone if calendar is not None else home_zone(flows)


# --- the agent's calls --------------------------------------------------------------------


def taken_offers(services: Services, agent_id: int, now_on: Offer | None) -> list[Offer]:
    """Hold-queue callers bridged to this agent lately (their offers last four hours): the
    call on now (`now_on`), and the ones named in their presence history."""
    with services.db.session() as session:
        sids = session.scalars(
            select(AgentPresenceEvent.call_sid)
            .where(AgentPresenceEvent.agent_id == agent_id,
                   AgentPresenceEvent.call_sid.is_not(None))
            .order_by(AgentPresenceEvent.id.desc()).limit(RECENT)).all()
    found: list[Offer] = [now_on] if now_on and now_on.kind == QUEUE_CALL else []
    for sid in dict.fromkeys(sids):
        offer = connect.offer_of(services.redis, sid)
        bridged = _float(offer.get("bridged_at"))
        if offer.get("agent_id") == str(agent_id) and bridged and offer.get("bridged_caller"):
            found.append(Offer(QUEUE_CALL, sid, offer.get("queue", ""),
                               offer["bridged_caller"], _float(offer.get("placed_at")),
                               bridged))
    return [o for o in found if o.bridged_at is not None and o.caller_sid]
