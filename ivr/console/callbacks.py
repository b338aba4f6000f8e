"""The callbacks page (admins): every callback request, filtered by status, queue, number and
date, one request's attempts and the actions taken on it, and the actions themselves (cancel,
retry now, reschedule; `callback.admin` does them and records each one).

Actions are plain POST forms carrying the CSRF token. A done action redirects back to the page
it came from with a notice; a refused one renders that page again with the reason (409 when the
request's state forbids it, 400 for a time that is not allowed).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from callback import admin, rules
from callback.deps import Deps, deps_of
from callback.errors import CallbackError, InvalidRequest, NotFound
from callback.models import (
    ActionKind,
    CallbackAction,
    CallbackAttempt,
    CallbackRequest,
    CallbackStatus,
)
from callback.schedule import earliest_call
from ivr.console import auth
from ivr.console.blueprint import bp
from ivr.core.hours import home_zone

PAGE_SIZE = 50
RECENT_ACTIONS = 10
S = CallbackStatus
# The status groups a supervisor filters by, in the order the page shows them.
GROUPS: dict[str, tuple[str, frozenset[CallbackStatus] | None]] = {
    "all": ("All", None),
    "pending": ("Pending", frozenset({S.PENDING_ENQUEUE, S.WAITING, S.DISPATCHED})),
    "scheduled": ("Scheduled", frozenset({S.SCHEDULED})),
    "dialing": ("Dialling", frozenset({S.DIALING, S.CONNECTED})),
    "failed": ("Failed", frozenset({S.FAILED})),
    "done": ("Done", frozenset({S.COMPLETED, S.CANCELLED})),
}
STATUS_LABELS = {
    S.PENDING_ENQUEUE: "Saved, queueing", S.SCHEDULED: "Scheduled",
    S.WAITING: "Waiting for an agent", S.DISPATCHED: "Being placed", S.DIALING: "Dialling",
    S.CONNECTED: "Connected", S.COMPLETED: "Completed", S.FAILED: "Failed",
    S.CANCELLED: "Cancelled",
}
OUTCOME_LABELS = {
    "connected": "Connected", "completed": "Connected", "cancelled": "Cancelled",
    "no-answer": "No answer", "busy": "Busy", "failed": "Call failed",
    "machine": "Answering machine", "declined": "Answered, did not press 1",
    "agent-unavailable": "Agent missed it", "lost": "Lost by a worker",
    "provider-error": "Telephony provider error", "error": "Gave up after job errors",
    "claimed": "Starting", "dialing": "Ringing", "answered": "Answered",
}
ACTION_LABELS = {ActionKind.CANCEL: "Cancelled", ActionKind.RETRY: "Retry now",
                 ActionKind.RESCHEDULE: "Rescheduled"}


@dataclass(frozen=True)
class Filters:
    """The list's GET parameters, checked."""

    status: str = "all"
    queue: str = ""
    phone: str = ""
    since: dt.date | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict) -> tuple[Filters, list[str]]:
        """The filters in `args`, and a message for each one that could not be read."""
        problems: list[str] = []
        status = args.get("status", "all")
        if status not in GROUPS:
            problems.append(f"Unknown status '{status[:20]}': showing all.")
            status = "all"
        since = None
        if args.get("since"):
            try:
                since = dt.date.fromisoformat(args["since"])
            except ValueError:
                problems.append("Created since must be a date (YYYY-MM-DD).")
            if since is not None and not MIN_DATE <= since <= MAX_DATE:
                problems.append("Created since must be a date between 2000 and 2999.")
                since = None
        page = args.get("page", "1")
        number = int(page) if page.isascii() and page.isdigit() and len(page) <= 6 else 1
        return cls(status=status, queue=args.get("queue", "").strip()[:64],
                   phone=args.get("phone", "").strip()[:32], since=since,
                   page=max(1, number)), problems

    def link(self, **changes) -> str:
        """The list's URL with these filters, changed by `changes` (page 1 unless given)."""
        changed = replace(self, **{"page": 1, **changes})
        params = {"status": changed.status, "queue": changed.queue, "phone": changed.phone,
                  "since": changed.since.isoformat() if changed.since else "",
                  "page": changed.page if changed.page > 1 else ""}
        query = urlencode({k: v for k, v in params.items() if v and (k, v) != ("status", "all")})
        return url_for("console.callbacks") + (f"?{query}" if query else "")


@bp.get("/callbacks")
@auth.signed_in("admin")
def callbacks():
    """Every callback request, newest first, filtered and paged."""
    return _list_page(request.args)


@bp.get("/callbacks/<int(max=2147483647):request_id>")
@auth.signed_in("admin")
def callback(request_id: int):
    """One callback request: its details, attempts and the actions taken on it."""
    return _detail_page(request_id)


@bp.post("/callbacks/<int(max=2147483647):request_id>/cancel")
@auth.signed_in("admin")
def callback_cancel(request_id: int):
    """Cancel the request (a call ringing now is hung up)."""
    return _act(request_id, ActionKind.CANCEL)


@bp.post("/callbacks/<int(max=2147483647):request_id>/retry")
@auth.signed_in("admin")
def callback_retry(request_id: int):
    """Call the request now, or at the first moment the calling hours allow."""
    return _act(request_id, ActionKind.RETRY)


@bp.post("/callbacks/<int(max=2147483647):request_id>/reschedule")
@auth.signed_in("admin")
def callback_reschedule(request_id: int):
    """Call the request at the time given (the form's datetime-local, in the home zone)."""
    return _act(request_id, ActionKind.RESCHEDULE)


def _act(request_id: int, kind: ActionKind):
    deps = deps_of(current_app)
    back = _back(request.form.get("back", ""), request_id)
    note = request.form.get("note", "").strip()
    who = _who()
    try:
        if kind is ActionKind.CANCEL:
            done = admin.cancel_by_admin(deps, request_id, who, note)
        elif kind is ActionKind.RETRY:
            done = admin.retry_now(deps, request_id, who, note)
        else:
            at = _read_local(request.form.get("at", ""), _zone(deps))
            done = admin.reschedule(deps, request_id, who, at, note)
    except NotFound:
        abort(404, f"There is no callback request #{request_id}.")
    except CallbackError as exc:
        if urlsplit(back).path == url_for("console.callback", request_id=request_id):
            return _detail_page(request_id, error=str(exc), status=exc.status,
                                asked_at=request.form.get("at"))
        return _list_page(MultiDict(parse_qsl(urlsplit(back).query)), error=str(exc),
                          status=exc.status)
    flash(done.message, "notice")
    return redirect(back)


def _who() -> str:
    """The name an action is recorded under."""
    user = auth.current_user()
    return "admin" if user is None or user.is_admin else user.name


def _back(target: str, request_id: int) -> str:
    """Where to return after an action: a callbacks page of this console, else the request's."""
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc and parts.path.startswith(
            url_for("console.callbacks")):
        return target
    return url_for("console.callback", request_id=request_id)


# Dates the page reads: outside them, time-zone arithmetic overflows (year 1 and 9999).
MIN_DATE, MAX_DATE = dt.date(2000, 1, 1), dt.date(2999, 12, 31)


def _zone(deps: Deps) -> ZoneInfo:
    """The flows' home time zone: the console shows times in it and reads times in it."""
    return ZoneInfo(home_zone(deps.flows()))


def _read_local(text: str, zone: ZoneInfo) -> dt.datetime:
    """A datetime-local value ('2026-03-12T10:30'), read in `zone`."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = dt.datetime.strptime(text.strip(), fmt).replace(tzinfo=zone)
        except ValueError:
            continue
        if not MIN_DATE <= moment.date() <= MAX_DATE:  # past them, time zone sums overflow
            break
        return moment
    raise InvalidRequest("Choose the date and time of the new call.")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _list_page(args: MultiDict, *, error: str | None = None, status: int = 200):
    deps = deps_of(current_app)
    zone = _zone(deps)
    filters, problems = Filters.from_args(args)
    conditions = []
    if filters.queue:
        conditions.append(CallbackRequest.queue == filters.queue)
    if _digits(filters.phone):
        conditions.append(CallbackRequest.phone.contains(_digits(filters.phone),
                                                         autoescape=True))
    if filters.since:
        # Local midnight of that day in the home zone, like every day the console shows.
        midnight = dt.datetime.combine(filters.since, dt.time(0), tzinfo=zone)
        conditions.append(CallbackRequest.created_at >= midnight.astimezone(dt.UTC))
    statuses = GROUPS[filters.status][1]
    shown = list(conditions)
    if statuses is not None:
        shown.append(CallbackRequest.status.in_([s.value for s in statuses]))
    with deps.db.session() as session:
        by_status = dict(session.execute(
            select(CallbackRequest.status, func.count()).where(*conditions)
            .group_by(CallbackRequest.status)).all())
        total = session.scalar(select(func.count()).select_from(CallbackRequest).where(*shown))
        pages = max(1, -(-total // PAGE_SIZE))
        filters = replace(filters, page=min(filters.page, pages))
        rows = session.scalars(
            select(CallbackRequest).where(*shown)
            .order_by(CallbackRequest.created_at.desc(), CallbackRequest.id.desc())
            .offset((filters.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
        last = _last_attempts(session, [r.id for r in rows])
        recent = session.scalars(select(CallbackAction).order_by(
            CallbackAction.at.desc(), CallbackAction.id.desc()).limit(RECENT_ACTIONS)).all()
    counts = {key: sum(n for s, n in by_status.items() if group is None or S(s) in group)
              for key, (_label, group) in GROUPS.items()}
    return render_template(
        "console/callbacks.html", **_common(deps, zone), filters=filters, problems=problems,
        rows=rows, last=last, total=total, pages=pages, counts=counts, recent=recent,
        queues=sorted(set(deps.flows().queues) | {filters.queue} - {""}), error=error,
        back=filters.link(page=filters.page),
    ), status


def _last_attempts(session, ids: list[int]) -> dict[int, str]:
    """Each request's newest attempt status."""
    if not ids:
        return {}
    out: dict[int, str] = {}
    for request_id, state in session.execute(
            select(CallbackAttempt.request_id, CallbackAttempt.status)
            .where(CallbackAttempt.request_id.in_(ids))
            .order_by(CallbackAttempt.request_id, CallbackAttempt.attempt_no)):
        out[request_id] = state  # ordered by attempt: the newest wins
    return out


def _detail_page(request_id: int, *, error: str | None = None, status: int = 200,
                 asked_at: str | None = None):
    deps = deps_of(current_app)
    zone = _zone(deps)
    with deps.db.session() as session:
        req = session.get(CallbackRequest, request_id)
        if req is None:
            abort(404, f"There is no callback request #{request_id}.")
        attempts = list(session.scalars(select(CallbackAttempt).where(
            CallbackAttempt.request_id == request_id).order_by(CallbackAttempt.attempt_no)))
        actions = list(session.scalars(select(CallbackAction).where(
            CallbackAction.request_id == request_id).order_by(
            CallbackAction.at.desc(), CallbackAction.id.desc())))
    now = deps.now()
    zones = rules.zones_for_number(req.phone)
    queue = deps.flows().queues.get(req.queue)
    try:
        suggested = earliest_call(deps, req.phone, req.queue,
                                  max(now, req.scheduled_for) + dt.timedelta(minutes=1))
    except InvalidRequest:
        suggested = None
    return render_template(
        "console/callback.html", **_common(deps, zone), req=req, attempts=attempts,
        actions=actions, error=error, back=url_for("console.callback", request_id=req.id),
        customer_times=[(z.key, now.astimezone(z).strftime("%H:%M")) for z in zones],
        window=_window(deps),
        hours_name=queue.hours if queue else None,
        at_value=asked_at or (_local_input(suggested, zone) if suggested else ""),
        at_min=_local_input(now, zone),
    ), status


def _window(deps: Deps) -> str:
    """The legal calling window, as the page says it: '08:00 and 21:00'."""
    start, end = rules.parse_window(deps.setting("CALLBACK_CALLING_WINDOW"))
    return f"{start:%H:%M} and {'24:00' if end == dt.time.max else format(end, '%H:%M')}"


def _local_input(at: dt.datetime, zone: ZoneInfo) -> str:
    """`at` as a datetime-local input's value, in `zone`."""
    return at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _number(e164: str) -> str:
    """The full number, grouped for reading ('+1 415-555-0123'): admins see it whole."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None),
                                          phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def _common(deps: Deps, zone: ZoneInfo) -> dict:
    """What both templates use: the user, the nav, time formatting, labels and permissions."""

    def local(at: dt.datetime | None, fmt: str = "%a %d %b, %H:%M") -> str:
        return at.astimezone(zone).strftime(fmt) if at else "—"

    return {
        "user": auth.current_user(), "page": "callbacks", "zone": zone.key, "local": local,
        "status_label": lambda s: STATUS_LABELS.get(S(s), s),
        "outcome_label": lambda o: OUTCOME_LABELS.get(o, o) if o else "—",
        "action_label": lambda a: ACTION_LABELS.get(ActionKind(a), a),
        "at_iso": lambda text: local(dt.datetime.fromisoformat(text)),
        "number": _number, "can": admin.can, "groups": GROUPS, "now": deps.now(),
    }
