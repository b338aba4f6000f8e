"""The live wallboard, /console: each queue and all of them, updated through server-sent events.

The page is rendered whole once; then `/console/events` sends the `wallboard` fragment again
whenever a change is announced (or every second: waits grow by themselves). All open
wallboards share one snapshot per change (`stream.shared`), so twenty screens cost one read.
The same snapshot feeds /metrics as gauges (`init_app`).
"""

from __future__ import annotations

import time

from flask import Flask, current_app, jsonify, render_template

from ivr.console import auth, figures, metrics, stream
from ivr.console.blueprint import bp
from ivr.infra.services import Services, services_of

SNAPSHOT_KEY = "ivr:console:wallboard"


def current_snapshot(services: Services) -> dict:
    """The wallboard's figures, shared by every open wallboard and by /metrics."""
    return _current(services)["snapshot"]


def _current(services: Services) -> dict:
    # The figures and their fragment, made once for all open wallboards of a change.
    def make() -> dict:
        snap = figures.snapshot(services)
        return {"snapshot": snap, "html": render_template("console/_wallboard.html", s=snap)}

    return stream.shared(services.redis, SNAPSHOT_KEY, make)


def clock_offset(services: Services) -> float:
    """Seconds the service's clock is ahead of the system's (`ivr serve --at`): the page's
    script counts waits on the browser's clock plus this."""
    return round(services.now().timestamp() - time.time(), 3)


@bp.get("")
@auth.signed_in("admin")
def wallboard():
    """The wallboard page, with its figures as of now."""
    services = services_of(current_app)
    return render_template("console/wallboard.html", user=auth.current_user(),
                           page="wallboard", s=current_snapshot(services),
                           clock_offset=clock_offset(services))


@bp.get("/events")
@auth.signed_in("admin")
def wallboard_events():
    """The wallboard's event stream: the `wallboard` fragment each time it changes."""
    services = services_of(current_app)

    def render() -> dict[str, str]:
        return {"wallboard": _current(services)["html"]}

    return stream.event_stream(services.redis, render, user=auth.session_key(),
                               still_allowed=auth.still_signed_in)


@bp.get("/wallboard.json")
@auth.signed_in("admin")
def wallboard_json():
    """The wallboard's figures as JSON (for scripts, and the console benchmark)."""
    return jsonify(current_snapshot(services_of(current_app)))


def init_app(app: Flask) -> None:
    """Export the wallboard's figures in /metrics, read at scrape time like the RQ gauges."""
    services = services_of(app)
    app.extensions.setdefault("ivr.metrics_collectors", []).append(
        metrics.WallboardCollector(lambda: current_snapshot(services)))
