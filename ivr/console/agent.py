"""The agent's own screen: presence, the screen pop of a call as it rings, wrap-up notes, and
the calls they took. Agents only, signed in with their own token; an agent sees only their
own calls (another's answers 404, as an unknown call does).

    GET  /console/agent                          the page
    GET  /console/agent/events                   its live parts (SSE: presence, offer, wrapup,
                                                 calls), re-rendered on every change notice
    POST /console/agent/presence                 status=available|offline (busy and wrap-up
                                                 follow calls, as at /agents/me)
    GET  /console/agent/calls/<call_sid>         one of their calls: the screen pop and notes
    POST /console/agent/calls/<call_sid>/note    a wrap-up note about it

The wrap-up note form is a live part of its own, changed only when another call ends or a
note is saved, so a presence change or a new ring never wipes a note being typed.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import redis
from flask import abort, current_app, redirect, render_template, request, url_for

from ivr.console import auth, my_calls, notes, screenpop
from ivr.console.blueprint import bp, problem
from ivr.console.stream import event_stream
from ivr.hold.views import SELF_STATUSES
from ivr.infra import live, paths
from ivr.infra.agents import AgentStatus, Presence, get_presence, roster, set_presence
from ivr.infra.agents.fields import AgentError
from ivr.infra.agents.models import Agent
from ivr.infra.services import Services, services_of

log = logging.getLogger(__name__)

STATUS_WORDS = {"available": "Available", "busy": "On a call", "wrap_up": "Wrap-up",
                "offline": "Offline"}


@bp.get("/agent")
@auth.signed_in("agent")
def agent():
    """The agent's page: presence buttons, the live screen pop, wrap-up and their calls."""
    me = _me()
    return render_template("console/agent.html", user=auth.current_user(), page="agent",
                           **_view(services_of(current_app), me))


@bp.get("/agent/events")
@auth.signed_in("agent")
def agent_events():
    """The page's live parts as server-sent events."""
    services, me = services_of(current_app), _me()

    def render() -> dict[str, str]:
        view = _view(services, me)
        return {name: render_template(f"console/{template}", **view)
                for name, template in (("presence", "_presence.html"),
                                       ("offer", "_screenpop.html"))} | {
            "wrapup": _macro("wrapup", view), "calls": _macro("calls_table", view)}

    return event_stream(services.redis, render, user=auth.session_key(),
                        still_allowed=auth.still_signed_in,
                        wakes=lambda notice: concerns(notice, me.id),
                        interval=AGENT_REFRESH)


# An agent's page re-renders for the changes that can concern them (their presence, an offer
# to them, a ring's or a bridge's webhooks, a callback job) and else every AGENT_REFRESH
# seconds: not for every holding caller's wait URL, which would cost every open agent page
# its queries many times a second.
AGENT_REFRESH = 3.0
_AGENT_PATHS = (paths.HOLD_AGENT, paths.HOLD_BRIDGING, paths.QUEUE_LEFT, paths.STATUS,
                "/callbacks/")


def concerns(notice: live.Notice, agent_id: int) -> bool:
    """Whether a change notice may change what agent `agent_id` sees."""
    if notice.what in ("presence", "offer"):
        return notice.detail.get("agent_id") == agent_id
    if notice.what in ("callback", "callbacks", live.MANY):
        return True
    path = str(notice.detail.get("path", ""))
    return notice.what == "request" and path.startswith(_AGENT_PATHS)


@bp.post("/agent/presence")
@auth.signed_in("agent")
def agent_presence():
    """Come and go: available or offline."""
    services, me = services_of(current_app), _me()
    status = request.form.get("status", "")
    if status not in [s.value for s in SELF_STATUSES]:
        return problem(400, f"You can set yourself available or offline (not {status!r}); "
                            "busy and wrap-up follow your calls.")
    try:
        set_presence(services.db, services.redis, me.id, status, reason="agent (console)",
                     now=services.now())
    except AgentError as exc:
        return problem(400, str(exc))
    except redis.RedisError:
        return problem(503, "Presence is unavailable right now; try again in a moment.")
    if request.headers.get("HX-Request"):
        return render_template("console/_presence.html", **_view(services, me))
    return redirect(url_for("console.agent"), 303)


@bp.get("/agent/calls/<call_sid>")
@auth.signed_in("agent")
def agent_call(call_sid: str):
    """One of the agent's calls: what they were shown, and the notes about it."""
    services, me = services_of(current_app), _me()
    pop = screenpop.pop_of_call(services, me.id, call_sid)
    if pop is None:
        abort(404, "There is no call of yours with that id.")
    return render_template("console/agent_call.html", user=auth.current_user(), page="agent",
                           pop=pop, call_sid=call_sid, notes=notes.notes_of(services.db, call_sid),
                           names=_names(services), zone=pop.zone,
                           now=services.now().timestamp(), **_helpers())


@bp.post("/agent/calls/<call_sid>/note")
@auth.signed_in("agent")
def agent_call_note(call_sid: str):
    """Save a wrap-up note about one of the agent's calls."""
    services, me = services_of(current_app), _me()
    if screenpop.pop_of_call(services, me.id, call_sid) is None:
        abort(404, "There is no call of yours with that id.")
    try:
        notes.add_note(services.db, call_sid, me.id, request.form.get("text", ""),
                       services.now())
    except notes.InvalidNote as exc:
        return problem(400, str(exc))
    back = request.form.get("next", "")
    if back != url_for("console.agent"):
        back = url_for("console.agent_call", call_sid=call_sid)
    return redirect(back + "#notes", 303)


# --- what the templates get ------------------------------------------------------------------


def _me() -> Agent:
    user = auth.current_user()
    assert user is not None and user.agent is not None  # `signed_in("agent")` saw to it
    return user.agent


def _view(services: Services, me: Agent) -> dict:
    """Everything the page and its live parts show, read once."""
    try:
        presence = get_presence(services.db, services.redis, me.id, services.now())
        offer = screenpop.current_offer(services, me.id)
        pop = screenpop.pop_of_offer(services, offer) if offer is not None else None
        calls = my_calls.agent_calls(services, me.id, offer)
    except redis.RedisError:
        # Presence, offers and hold records live in Redis: without it there is nothing
        # live to show (the page says so) until it is back.
        log.warning("agent page: Redis unavailable", exc_info=True)
        presence, offer, pop, calls = None, None, None, []
    last = my_calls.last_call(calls, offer)
    return {
        "me": me, "presence": presence, "offer": offer, "pop": pop, "calls": calls,
        "last": last, "last_notes": notes.notes_of(services.db, last.call_sid) if last else [],
        "note_counts": notes.note_counts(services.db, [c.call_sid for c in calls]),
        "choices": [s.value for s in SELF_STATUSES], "status_words": _status_words(presence,
                                                                                offer),
        "names": _names(services), "now": services.now().timestamp(),
        "zone": screenpop.zone_of(services, (me.queues or [""])[0]), **_helpers(),
    }


def _status_words(presence: Presence | None, offer: screenpop.Offer | None) -> str:
    if presence is None:
        return "Unknown (presence is unavailable)"
    if presence.status is AgentStatus.BUSY and offer is not None and not offer.is_on_call:
        return "Ringing"
    return STATUS_WORDS[presence.status.value]


def _names(services: Services) -> dict[int, str]:
    return {a.id: a.name for a in roster(services.db)}


def _macro(name: str, view: dict) -> str:
    """One macro of `_screenpop.html`, rendered with the page's view."""
    module = current_app.jinja_env.get_template("console/_screenpop.html").make_module(view)
    return str(getattr(module, name)())


def _helpers() -> dict:
    return {"clock": clock, "duration": duration}


def clock(moment: dt.datetime | None, zone: str = "UTC") -> str:
    """A moment as an agent reads it, in `zone`: "Wed 2 Dec, 11:58 EST"."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} {local.tzname()}"


def duration(seconds: float | None) -> str:
    """A wait as m:ss (h:mm:ss past an hour)."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

