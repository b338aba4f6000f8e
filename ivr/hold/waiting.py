"""The hold-queue wait handler: place in line, an honest estimate, hold music, a callback offer.

Twilio requests the wait URL when the caller joins and again each time our TwiML ends, so the
TwiML is one `<Gather numDigits=1>` holding the announcement (when one is due) and the music:
the caller can press 1 to leave for a callback that keeps their place, or 0 to hear that they
are already waiting for a person. Announcements come on entry and then whenever at least
`announce_every` seconds of waiting have passed (set the queue's hold music to a clip about
that long). Position comes from the shared line (`ivr.infra.line`), so callbacks ahead count.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import redis
from flask import Flask, current_app
from twilio.twiml.voice_response import VoiceResponse

from ivr.core.engine.prompts import Speaker
from ivr.core.flows.schema import Queue
from ivr.core.i18n.languages import twilio_queue
from ivr.core.waits.bands import LONG_WAIT_SECONDS, Band
from ivr.core.waits.estimator import Estimate, EstimateError, estimate_wait
from ivr.core.waits.history import HistoryStats
from ivr.hold import holding, tracking
from ivr.hold.connect import connect_agents
from ivr.hold.holding import Holder
from ivr.hold.offer import callback_offer
from ivr.infra import line, metrics, paths, queue_history
from ivr.infra.agents import presence
from ivr.infra.services import services_of
from ivr.voice.steps import raced

log = logging.getLogger(__name__)

DEFAULT_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
# Twilio comes back a little before `announce_every` if the clip is a touch short: allow it.
ANNOUNCE_SLACK_SECONDS = 5
CALLBACK_KEY, OPERATOR_KEY = "1", "0"



def clock(app: Flask) -> dt.datetime:
    """The service's clock, aware UTC."""
    return services_of(app).now()


def speaker(app: Flask, *languages: str | None) -> Speaker:
    """Speaks the hold queue's sentences in the first language given (the caller's), else the
    flows' default, with that language's voice and the flows' own wording."""
    defaults = services_of(app).flows.current().file.defaults
    language = next((lang for lang in languages if lang), defaults.language)
    return Speaker(defaults, language)


def spoken_band(spk: Speaker, band: Band) -> str:
    """A wait band as the caller hears it, in their language."""
    if band.minutes is None:
        return spk.words("wait.over", minutes=LONG_WAIT_SECONDS // 60)
    if band.minutes == 0:
        return spk.words("wait.under_minute")
    return spk.words("wait.about", minutes=band.minutes)


def _default_language(app: Flask) -> str:
    return services_of(app).flows.current().file.defaults.language


def queue_config(app: Flask, queue: str) -> Queue:
    """The queue's settings from the current flows (defaults for an unknown queue)."""
    return services_of(app).flows.current().file.queues.get(queue) or Queue()


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def wait_twiml(form, args) -> VoiceResponse:
    """TwiML played to a waiting caller (Twilio requests it again when it ends)."""
    app = current_app._get_current_object()
    queue = args.get("queue", "")
    sid = form.get("CallSid", "")
    cfg = queue_config(app, queue)
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf", num_digits=1, timeout=1, method="POST", action_on_empty_result=False,
        action=services_of(app).urls.url(paths.HOLD_KEY, queue=queue, v=args.get("v"),
                                         lang=args.get("lang")),
    )
    try:
        available = _announce(app, gather, sid, queue, cfg, form, args)
    except redis.RedisError as exc:
        # Without Redis we cannot say where they are; music and the keys still work.
        log.warning("hold announcement skipped: Redis unavailable", extra={"error": str(exc)})
        available = 0
    gather.play(cfg.hold_music or DEFAULT_MUSIC)
    if available > 0:
        try:
            connect_agents(app, queue)
        except Exception:  # the caller's music must not wait on an agent dial failing
            log.exception("connecting an agent failed", extra={"queue": queue})
    return response


def _announce(app: Flask, gather, sid: str, queue: str, cfg: Queue, form, args) -> int:
    """Add the announcement when due; return how many agents are free now."""
    r = services_of(app).redis
    now = clock(app)
    holder, learned = holding.load_with_history(r, sid, queue)
    holder = holder or _join(app, sid, queue, form, args, now)
    if holder is None:
        log.info("wait URL of a visit that has ended: not joined again",
                 extra={"call_sid": sid, "queue": queue})
        return 0
    queue_time = _int(form.get("QueueTime"))
    elapsed = float(queue_time if queue_time is not None else now.timestamp() - holder.joined_at)
    staffed, available = presence.counts(r, queue, now)
    due = holder.last_announced < 0 or (
        elapsed - holder.last_announced >= cfg.announce_every - ANNOUNCE_SLACK_SECONDS
    )
    if not due:
        return available
    place = line.place_of(r, queue, holder.first_asked)
    spk = speaker(app, args.get("lang"), holder.language)
    said: list[str] = []
    item: dict[str, Any] = {"kind": "announce", "at": now.timestamp(), "elapsed": elapsed,
                            "position": place.position, "detail": {"staffed": staffed}}
    items = [item]
    if place.position <= 1:
        said.append(spk.words("hold.next"))
    else:
        said.append(spk.words("hold.position", position=place.position))
    estimate = _estimate(learned, cfg, place, staffed, elapsed)
    long_wait = elapsed >= cfg.max_wait
    if estimate is None:
        said.append(spk.words("hold.unstaffed"))
    else:
        announcement = estimate.announce(holder.announcement)
        if announcement.is_overdue:
            said.append(spk.words("hold.overdue"))
        said.append(spk.words("hold.wait", band=spoken_band(spk, announcement.band)))
        if long_wait:
            said.append(spk.words("hold.max_wait"))
        elif estimate.seconds > cfg.offer_callback_after or announcement.is_overdue:
            said.append(spk.words("hold.offer"))
        elif holder.announced == 0:
            said.append(spk.words("hold.offer_first"))
        holder.announcement = announcement
        item["detail"]["band"] = announcement.band.phrase
        items.append(_estimate_item(now, estimate, announcement))
        log.info("hold estimate", extra={"call_sid": sid, "queue": queue,
                                         "explanation": estimate.explanation,
                                         "said": announcement.band.phrase})
    if long_wait and not holder.max_wait_offered:
        holder.max_wait_offered = True
        items.append({"kind": "max_wait", "at": now.timestamp(), "elapsed": elapsed})
    for text in said:
        spk.text(gather, text)
    holder.announced += 1
    holder.last_announced = elapsed
    holding.save(r, holder, *items)
    return available


def _estimate(learned: HistoryStats, cfg: Queue, place: line.Place, staffed: int,
              elapsed: float) -> Estimate | None:
    try:
        return estimate_wait(
            place.callers_ahead + 1, staffed, learned,
            elapsed_seconds=elapsed, callbacks_ahead=place.callbacks_ahead,
            default_handle_seconds=float(cfg.default_handle_seconds),
        )
    except EstimateError:
        return None  # nobody staffed: no honest number exists, offer a callback instead


def _estimate_item(now: dt.datetime, est: Estimate, ann) -> dict[str, Any]:
    return {
        "kind": "estimate", "at": now.timestamp(), "elapsed": est.elapsed_seconds,
        "position": est.position, "agents": est.agents, "expected": est.seconds,
        "upper": est.upper_seconds, "band": ann.band.phrase,
        "band_lower": ann.band.lower_seconds, "band_upper": ann.band.upper_seconds,
        "overdue": ann.is_overdue, "cold": est.is_cold_start, "explanation": est.explanation,
    }


def _join(app: Flask, sid: str, queue: str, form, args, now: dt.datetime) -> Holder | None:
    """First wait-URL request of a visit: take (or keep) a place in the shared line."""
    r = services_of(app).redis
    queue_time = _int(form.get("QueueTime")) or 0
    joined = now.timestamp() - queue_time
    kept = line.kept_place(r, queue, sid)  # back from a callback offer: the same place
    first = min(joined, kept) if kept is not None else joined
    holder = Holder(call_sid=sid, queue=queue, first_asked=first, joined_at=joined,
                    caller=form.get("From", ""), visit=_visit(args),
                    language=args.get("lang", ""),
                    twilio_queue=twilio_queue(queue, args.get("lang", ""), _default_language(app)))
    if not holding.join(r, holder, {"kind": "join", "at": now.timestamp(),
                                    "elapsed": queue_time,
                                    "detail": {"kept_place": first < joined}}):
        return None  # a late request of a visit that ended: the caller is not brought back
    return holder


def key_twiml(form, args) -> VoiceResponse:
    """A key pressed while holding: 1 leaves for a callback offer, 0 reassures, others resume."""
    app = current_app._get_current_object()
    queue = args.get("queue", "")
    sid = form.get("CallSid", "")
    digits = form.get("Digits", "")
    r = services_of(app).redis
    response = VoiceResponse()
    now = clock(app)
    holder: Holder | None = None
    try:
        holder = holding.load(r, sid)
        item = {"kind": "key", "at": now.timestamp(), "detail": {"digits": digits}}
        if holder is not None and digits == CALLBACK_KEY:
            holder.leaving = "callback"
            holding.save(r, holder, item)
        elif holder is not None:
            holding.log_item(r, sid, item)
    except redis.RedisError as exc:
        log.warning("hold key not recorded: Redis unavailable", extra={"error": str(exc)})
    if digits == CALLBACK_KEY:
        # Out of Twilio's queue; the <Enqueue> action (left_twiml) then makes the offer.
        response.leave()
        return response
    if digits == OPERATOR_KEY:
        spk = speaker(app, args.get("lang"), holder.language if holder else None)
        spk.sentence(response, "hold.already")
    response.redirect(services_of(app).urls.url(paths.QUEUE_WAIT, queue=queue, v=args.get("v"),
                                                lang=args.get("lang")), method="POST")
    return response


def left_twiml(form, args) -> VoiceResponse:
    """The <Enqueue> action: record the visit; a caller who left (not answered) is offered a
    callback, never hung up on."""
    app = current_app._get_current_object()
    queue = args.get("queue", "")
    sid = form.get("CallSid", "")
    result = form.get("QueueResult", "")
    now = clock(app)
    r = services_of(app).redis
    outcome = tracking.OUTCOMES.get(result, tracking.LEFT)
    holder: Holder | None = None
    try:
        ended = holding.finish(r, sid, _visit(args), now.timestamp())
        if ended.repeated:
            # Twilio sent this visit's end again (or late): the call has moved on with the
            # first answer; say where it is now, and change nothing.
            return raced(app, sid, "hold")
        holder, items = ended.holder, ended.items
    except redis.RedisError as exc:
        log.warning("hold visit not recorded: Redis unavailable", extra={"error": str(exc)})
        items = []
    if holder is not None:
        if outcome == tracking.LEFT and holder.leaving == "callback":
            outcome = tracking.CALLBACK
        _record(app, holder, items, outcome, result, form, now)
    if outcome == tracking.ANSWERED:
        response = VoiceResponse()
        speaker(app, args.get("lang"), holder.language if holder else None).sentence(
            response, "hold.thanks")
        response.hangup()
        return response
    if outcome == tracking.ABANDONED or result == "redirected":
        return VoiceResponse()  # nobody is listening, or the call already has new TwiML
    if holder is not None:
        try:  # the callback they are offered (or their return to the queue) keeps it
            line.keep_place(r, queue, sid, holder.first_asked)
        except redis.RedisError as exc:
            log.warning("place in line not kept: Redis unavailable", extra={"error": str(exc)})
    return callback_offer(app, form, queue, holder, args.get("lang", ""))


def _record(app: Flask, holder: Holder, items: list[dict], outcome: str, result: str, form,
            now: dt.datetime) -> None:
    answer = next((i for i in reversed(items) if i.get("kind") == "answer"), None)
    queue_time = _int(form.get("QueueTime"))
    if answer is not None and answer.get("elapsed") is not None:
        wait = float(answer["elapsed"])  # the wait ended at the bridge, not at hang-up
    elif queue_time is not None:
        wait = float(queue_time)
    else:
        wait = max(0.0, now.timestamp() - holder.joined_at)
    agent_id = answer.get("detail", {}).get("agent_id") if answer else None
    try:
        tracking.record_visit(services_of(app).db, holder, items, outcome=outcome,
                              queue_result=result or None, left_at=now, wait_seconds=wait,
                              agent_id=agent_id)
    except Exception:
        log.exception("hold visit not written", extra={"call_sid": holder.call_sid})
    metrics.HOLD_VISITS.labels(holder.queue, outcome).inc()
    try:
        if outcome == tracking.ANSWERED:
            queue_history.learn(services_of(app).redis, holder.queue,
                          lambda s: s.record_answered(wait))
        elif outcome == tracking.ABANDONED:
            queue_history.learn(services_of(app).redis, holder.queue,
                          lambda s: s.record_abandoned(wait))
    except redis.RedisError:
        log.warning("hold history not updated: Redis unavailable")


def _visit(args) -> int:
    """The visit token of a hold-queue URL (`v`, set by the <Enqueue>); 0 when it has none."""
    value = args.get("v", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else 0
