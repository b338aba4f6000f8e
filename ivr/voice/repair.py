"""Calls whose final status callback never came are ended from the provider's word.

Twilio may lose a status callback, or deliver it while Redis or the database stalls (we answer
5xx and Twilio does not send it again). The call's journey would then stay open for good: no
end, no duration, an outcome missing from every report. The worker's repair pass asks the
provider about journeys still open a while after they started, each at most once per
interval, and ends those whose call is over exactly as the status callback would have.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from ivr.errors import TelephonyError
from ivr.infra.models import Call
from ivr.infra.services import Services
from ivr.infra.telephony import FINAL_STATUSES
from ivr.voice.steps import finish_call

log = logging.getLogger(__name__)

CHECKED_KEY = "ivr:calls:checked:{sid}"  # asked the provider about this call lately
BATCH = 200  # provider look-ups per pass
SCAN = 5000  # open journeys looked at per pass (ones asked about lately are passed over)


def end_lost_calls(services: Services, now: dt.datetime) -> int:
    """One pass: end the open journeys whose call the provider says is over; returns how many."""
    after = dt.timedelta(seconds=float(services.config.get("CALL_CHECK_AFTER") or 900))
    # Journey times are the system clock's (webhooks arrive in real time), whatever `--at` did.
    real_now = services.on_system_clock(now)
    with services.db.session() as session:
        open_calls = session.scalars(select(Call.call_sid).where(
            Call.ended_at.is_(None), Call.started_at <= real_now - after,
        ).order_by(Call.started_at).limit(SCAN)).all()
    ended = asked = 0
    for sid in open_calls:
        if asked >= BATCH:
            break
        if not services.redis.set(CHECKED_KEY.format(sid=sid), 1, nx=True,
                                  ex=max(1, int(after.total_seconds()))):
            continue  # asked lately: a long call is asked about once per interval
        state = services.calls.load(sid, ended=True)
        if state is not None and state.ended:
            continue  # its end is recorded, and its row on the way to SQL
        asked += 1
        try:
            status = services.telephony.call_status(sid)
        except TelephonyError as exc:
            log.warning("could not ask the provider about an open call: %s", exc,
                        extra={"call_sid": sid})
            continue
        if status is not None and status not in FINAL_STATUSES:
            continue  # still going
        # The provider no longer knowing the call (None) means it ended long ago.
        if finish_call(services.calls, sid, status or "completed", None):
            log.warning("call ended from the provider's word: its final status callback never "
                        "arrived", extra={"call_sid": sid, "call_status": status or "unknown"})
            ended += 1
    return ended
