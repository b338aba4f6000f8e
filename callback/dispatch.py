"""The dispatcher hands due callbacks to free agents; the sweeper repairs what Redis lost.

Dispatch: for each queue with a free agent, walk the shared line from the front; a live caller
ahead takes an agent (the hold queue serves them), a due callback gets a `place_callback` job.
One dispatcher is active at a time (a Redis lock); the others stand by.

Sweep (every few seconds): enqueue requests saved while Redis was down, put due requests back
in line after a Redis restart, re-send dial jobs that never started, release scheduled requests
whose RQ job was lost, and close attempts whose worker died before the dial was confirmed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence

import redis
from redis.exceptions import LockError
from redis.lock import Lock
from rq import Callback
from sqlalchemy import select, update

from callback.deps import Deps
from callback.jobs import AGENT_FIRST, status_callback_of
from callback.lifecycle import (
    finish_attempt,
    hang_up_quietly,
    record_placed_call,
    release_agent_of,
    settle_from_status,
)
from callback.models import AttemptStatus, CallbackAttempt, CallbackRequest, CallbackStatus
from callback.schedule import DIAL_JOB, ON_FAILURE, WAKE_KEY, enqueue_request
from ivr.errors import TelephonyError
from ivr.infra import line, live
from ivr.infra.agents import (
    UNKNOWN,
    attach_call,
    available_count,
    dial_address,
    release_finished_calls,
    release_unplaced_claims,
    restore_presence,
)
from ivr.infra.telephony import FINAL_STATUSES

log = logging.getLogger(__name__)
LOCK_KEY = "ivr:cb:dispatcher"
SWEEP_BATCH = 500
CHECKED_KEY = "ivr:cb:checked:{attempt}"  # asked the provider about this attempt lately


def dispatch_once(deps: Deps, now: dt.datetime | None = None) -> list[int]:
    """Enqueue dial jobs for the callbacks free agents can take now; return their ids."""
    now = now or deps.now()
    sent: list[int] = []
    for queue in deps.flows().queues:
        free = available_count(deps.redis, queue, now)
        if free <= 0:
            continue
        candidates: list[int] = []
        for kind, ident, _score in line.live_head(deps.redis, queue, free):
            if kind == "callback":
                candidates.append(int(ident))
        for request_id in candidates:
            job = _dispatch(deps, request_id, now)
            if job:
                sent.append(request_id)
    if sent:
        live.changed(deps.redis, "callbacks", dispatched=sent)
    return sent


def _dispatch(deps: Deps, request_id: int, now: dt.datetime) -> bool:
    with deps.db.session() as session:
        req = session.get(CallbackRequest, request_id)
        if req is None or req.state.is_final:
            line.leave_callback(deps.redis, req.queue if req else "", request_id)
            return False
        if req.state is not CallbackStatus.WAITING:
            return False  # already dispatched: it still holds its agent slot this round
        moved = session.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == request_id,
                   CallbackRequest.status == CallbackStatus.WAITING.value)
            .values(status=CallbackStatus.DISPATCHED.value, dispatched_at=now)
        ).rowcount
        attempt_no = req.attempts + 1
    if not moved:
        return False
    _send_job(deps, request_id, attempt_no)
    return True


def _send_job(deps: Deps, request_id: int, attempt_no: int) -> None:
    deps.rq_queue().enqueue(DIAL_JOB, request_id, attempt_no,
                            job_id=f"cb-dial-{request_id}-{attempt_no}",
                            result_ttl=600, failure_ttl=86400, job_timeout=120,
                            on_failure=Callback(ON_FAILURE))


def sweep(deps: Deps, now: dt.datetime | None = None) -> dict[str, int]:
    """One repair pass; returns how many rows each step touched."""
    now = now or deps.now()
    # An emptied Redis (restart without persistence) forgets who is available: rebuild it
    # from SQL once per dataset, or no callback could ever be dispatched again.
    restore_presence(deps.db, deps.redis, now)
    counts = {"enqueued": 0, "released": 0, "rejoined": 0, "resent": 0, "lost": 0,
              "settled": 0, "freed": 0}
    grace = dt.timedelta(seconds=float(deps.setting("CALLBACK_DISPATCH_GRACE")))
    lost_after = dt.timedelta(seconds=float(deps.setting("CALLBACK_LOST_AFTER")))
    with deps.db.session() as session:
        pending = session.scalars(select(CallbackRequest.id).where(
            CallbackRequest.status == CallbackStatus.PENDING_ENQUEUE.value
        ).order_by(CallbackRequest.first_asked_at).limit(SWEEP_BATCH)).all()
        overdue = session.scalars(select(CallbackRequest.id).where(
            CallbackRequest.status == CallbackStatus.SCHEDULED.value,
            CallbackRequest.scheduled_for <= now - grace,
        ).limit(SWEEP_BATCH)).all()
        waiting = session.execute(select(
            CallbackRequest.id, CallbackRequest.queue, CallbackRequest.first_asked_at
        ).where(CallbackRequest.status == CallbackStatus.WAITING.value)).all()
        stale = session.execute(select(CallbackRequest.id, CallbackRequest.attempts).where(
            CallbackRequest.status == CallbackStatus.DISPATCHED.value,
            CallbackRequest.dispatched_at <= now - grace,
        ).limit(SWEEP_BATCH)).all()
        orphans = session.scalars(select(CallbackAttempt).where(
            CallbackAttempt.status == AttemptStatus.CLAIMED.value,
            CallbackAttempt.call_sid.is_(None),
            CallbackAttempt.created_at <= now - lost_after,
        ).limit(SWEEP_BATCH)).all()
    for request_id in pending:
        counts["enqueued"] += enqueue_request(deps, request_id)
    for request_id in overdue:  # the RQ scheduled job never ran (Redis flushed or restarted)
        with deps.db.session() as session:
            session.execute(update(CallbackRequest).where(
                CallbackRequest.id == request_id,
                CallbackRequest.status == CallbackStatus.SCHEDULED.value,
            ).values(status=CallbackStatus.PENDING_ENQUEUE.value))
        counts["released"] += enqueue_request(deps, request_id)
    by_queue: dict[str, set[str]] = {}
    pipe = deps.redis.pipeline(transaction=False)
    for request_id, queue, first in waiting:
        if queue not in by_queue:
            by_queue[queue] = line.waiting_callbacks(deps.redis, queue)
        if str(request_id) not in by_queue[queue]:
            pipe.zadd(line.CALLBACKS.format(queue=queue), {str(request_id): first.timestamp()},
                      nx=True)
            counts["rejoined"] += 1
    pipe.execute()
    for request_id, attempts in stale:
        with deps.db.session() as session:
            session.execute(update(CallbackRequest).where(
                CallbackRequest.id == request_id,
                CallbackRequest.status == CallbackStatus.DISPATCHED.value,
            ).values(dispatched_at=now))
        _send_job(deps, request_id, attempts + 1)
        counts["resent"] += 1
    for attempt in orphans:
        # Claimed but no SID after `lost_after`: the worker died around the dial, or the
        # provider's answer was lost. Its status callbacks would have filled in the SID by
        # now, but those can be lost too: the provider's Calls list has the last word.
        if _adopt_placed_call(deps, attempt):
            continue
        if finish_attempt(deps, attempt.id, AttemptStatus.LOST, error="worker lost the attempt"):
            release_agent_of(deps, attempt, "canceled")
            counts["lost"] += 1
    counts["settled"] = _settle_stuck(deps, now)
    stuck_after = dt.timedelta(seconds=float(deps.setting("CALLBACK_STUCK_AFTER")))
    counts["freed"] = len(release_finished_calls(
        deps.db, deps.redis, _provider_status(deps), now, older_than=stuck_after))
    counts["unclaimed"] = len(release_unplaced_claims(
        deps.db, deps.redis, _live_call(deps), now, older_than=stuck_after))
    if any(counts.values()):
        log.info("callback sweep", extra=counts)
    return counts


def _adopt_placed_call(deps: Deps, attempt: CallbackAttempt) -> bool:
    """True when the provider has a call placed for `attempt` (now adopted, and settled by
    the stuck pass like any other), or cannot say (asked again next pass)."""
    to = attempt.agent_address if attempt.mode == AGENT_FIRST else _phone_of(deps, attempt)
    try:
        found = deps.telephony.adopt_placed(
            to or "", deps.config.get("TWILIO_FROM_NUMBER") or "",
            # Twilio's date_created is real time; the attempt's is the service's (`--at`).
            deps.services.on_system_clock(attempt.created_at),
            status_callback_of(deps, attempt))
    except TelephonyError as exc:
        log.warning("could not ask the provider about an unconfirmed dial: %s", exc,
                    extra={"attempt": attempt.id})
        # Asked again next pass while the trouble may pass; a refusal (no provider, bad
        # credentials) will not, and the attempt is given up as lost.
        return exc.transient
    if found is None:
        return False
    state = record_placed_call(deps, attempt.id, found)
    if state is AttemptStatus.CANCELLED:
        # Cancelled while nobody knew the call's SID: nothing hung it up yet.
        log.warning("an unconfirmed dial of a cancelled callback had been placed: hanging up",
                    extra={"attempt": attempt.id, "call_sid": found})
        hang_up_quietly(deps, found)
    elif state is AttemptStatus.DIALING:
        log.warning("an unconfirmed callback dial had been placed: adopted", extra={
            "attempt": attempt.id, "call_sid": found})
        if attempt.mode == AGENT_FIRST and attempt.agent_id is not None:
            attach_call(deps.redis, attempt.agent_id, found)
    return True


def _phone_of(deps: Deps, attempt: CallbackAttempt) -> str:
    with deps.db.session() as session:
        req = session.get(CallbackRequest, attempt.request_id)
        return req.phone if req is not None else ""


def _provider_status(deps: Deps):
    """The provider's status of a call, for agents busy on it; a failed question says
    "still going" (None would release the agent)."""
    def status(call_sid: str) -> str | None:
        try:
            return deps.telephony.call_status(call_sid)
        except TelephonyError as exc:
            log.warning("could not ask the provider about call %s: %s", call_sid, exc)
            return "in-progress"
    return status


def _live_call(deps: Deps):
    """The provider's live call to an agent since their claim, for an agent busy with no
    call; a failed question says UNKNOWN (asked again later, the agent stays busy)."""
    def live(agent, since: dt.datetime):
        try:
            return deps.telephony.live_call_to(
                dial_address(agent), deps.config.get("TWILIO_FROM_NUMBER") or "",
                deps.services.on_system_clock(since))  # Twilio's date_created is real time
        except TelephonyError as exc:
            log.warning("could not ask the provider about agent %s's claim: %s", agent.id, exc)
            return UNKNOWN
    return live


def _settle_stuck(deps: Deps, now: dt.datetime) -> int:
    """Ask the provider about attempts still open a while after their dial: a final status
    callback that never came (or came while Redis or the database stalled, and was lost) must
    not leave the request dialing, its agent busy and its number's slot taken, for good."""
    after = dt.timedelta(seconds=float(deps.setting("CALLBACK_STUCK_AFTER")))
    with deps.db.session() as session:
        stuck = session.scalars(select(CallbackAttempt).where(
            CallbackAttempt.status.in_([AttemptStatus.DIALING.value,
                                        AttemptStatus.ANSWERED.value]),
            CallbackAttempt.call_sid.is_not(None),
            CallbackAttempt.created_at <= now - after,
        ).order_by(CallbackAttempt.created_at).limit(SWEEP_BATCH)).all()
    settled = 0
    for attempt in stuck:
        key = CHECKED_KEY.format(attempt=attempt.id)
        if not deps.redis.set(key, 1, nx=True, ex=int(after.total_seconds()) or 1):
            continue  # asked recently: a long conversation is asked about once per interval
        try:
            status = deps.telephony.call_status(attempt.call_sid)
        except TelephonyError as exc:
            log.warning("could not ask the provider about a callback attempt: %s", exc,
                        extra={"attempt": attempt.id, "call_sid": attempt.call_sid})
            continue
        if status is not None and status not in FINAL_STATUSES:
            continue  # still ringing or talking
        leg = "agent" if attempt.mode == AGENT_FIRST else "customer"
        talked = None
        if leg == "agent" and status == "completed":
            # Did the agent's <Dial> reach the customer? The provider's child calls say.
            try:
                talked = any(s == "completed" and d > 0
                             for s, d in deps.telephony.child_calls(attempt.call_sid))
            except TelephonyError as exc:
                log.warning("could not list a callback's customer leg: %s", exc,
                            extra={"attempt": attempt.id})
                continue
        if settle_from_status(deps, attempt, leg, status or "failed", customer_talked=talked):
            log.warning("callback attempt settled from the provider: its final status "
                        "callback never arrived", extra={"attempt": attempt.id,
                                                         "call_status": status or "unknown"})
            settled += 1
    return settled


class Dispatcher:
    """Runs dispatch (on wake-ups and every interval) and sweeps, in a daemon thread."""

    def __init__(self, deps: Deps, *, interval: float | None = None,
                 sweep_interval: float | None = None,
                 repairs: Sequence[Callable[[dt.datetime], int]] = ()) -> None:
        self.deps = deps
        # Other repair passes run with each sweep (the composition root gives them: the call
        # journeys' is ivr.voice.repair, which callbacks may not import).
        self.repairs = tuple(repairs)
        self.interval = float(interval or deps.setting("CALLBACK_DISPATCH_INTERVAL"))
        self.sweep_interval = float(sweep_interval or deps.setting("CALLBACK_SWEEP_INTERVAL"))
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lease: Lock | None = None

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self.run, name="callback-dispatcher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def run(self) -> None:
        """Loop until stopped; survives Redis and database outages."""
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                if self._leader():
                    if time.monotonic() >= next_sweep:
                        sweep(self.deps)
                        self._repair()
                        next_sweep = time.monotonic() + self.sweep_interval
                        if not self._leader():  # a long pass may have outlived the lease
                            continue
                    dispatch_once(self.deps)
                    # Sleep until woken by a due callback or a freed agent, or the interval.
                    self.deps.redis.blpop([WAKE_KEY], timeout=self.interval)
                else:
                    self._stop.wait(self.interval * 5)
            except redis.RedisError as exc:
                log.warning("dispatcher: Redis unavailable", extra={"error": str(exc)})
                self._stop.wait(1.0)
            except Exception:
                log.exception("dispatcher pass failed")
                self._stop.wait(1.0)

    def _repair(self) -> None:
        for repair in self.repairs:
            try:
                repair(self.deps.now())
            except redis.RedisError:
                raise
            except Exception:
                log.exception("repair pass failed", extra={"repair": repr(repair)})

    def _leader(self) -> bool:
        """Hold (or renew) the dispatcher lease: one dispatcher places calls at a time."""
        if self._lease is None:
            # redis-py's Lock: a random token per holder, checked and renewed atomically.
            self._lease = self.deps.redis.lock(
                LOCK_KEY, timeout=max(2.0, self.interval * 20), blocking=False,
                thread_local=False)
        try:
            if self._lease.owned():
                return bool(self._lease.reacquire())
        except LockError:
            return False
        return bool(self._lease.acquire())
