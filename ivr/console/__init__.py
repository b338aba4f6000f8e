"""The operations console under /console: a live wallboard, the agent's screen, callbacks,
flows and reports, for people signed in with the admin token or their own agent token.

Pages are rendered on the server; their live parts are htmx with its SSE extension (vendored
from npm under `static/vendor`, see its README), fed by `ivr.console.stream` from the Redis
change channel (`ivr.infra.live`), so any web process can serve any open page.
"""

from flask import Flask

from ivr.console import agent, auth, callbacks, flows, reports, signin, wallboard
from ivr.console.blueprint import bp

__all__ = ["init_app"]

PAGES = (signin, wallboard, agent, callbacks, flows, reports)  # each adds its views to `bp`


def init_app(app: Flask) -> None:
    """Register the console: sessions, CSRF, the pages, and its live figures in /metrics."""
    auth.init_app(app)
    app.register_blueprint(bp)
    wallboard.init_app(app)
