"""The callback Deps an RQ job uses in this process: bound by the worker, else built from the
environment on first use (no Flask app: a job needs the shared services, not the web layer)."""

from __future__ import annotations

import os
import threading

from callback.deps import Deps
from ivr.infra.config import load_config
from ivr.infra.services import build_services

_bound: Deps | None = None
_bound_pid: int | None = None
_lock = threading.Lock()


def bind(deps: Deps) -> None:
    """Make `deps` what jobs in this process use (the worker entry point calls this)."""
    global _bound, _bound_pid
    with _lock:
        _bound, _bound_pid = deps, os.getpid()


def current() -> Deps:
    """The Deps for a job: the bound ones, or built from the environment on first use.

    After a fork (RQ's forking worker runs each job in a child) pooled connections belong to
    the parent, so the child drops them and opens its own.
    """
    global _bound, _bound_pid
    with _lock:
        if _bound is not None and _bound_pid != os.getpid():
            _bound.db.engine.dispose(close=False)
            _bound.redis.connection_pool.reset()
            _bound_pid = os.getpid()
        if _bound is None:
            _bound, _bound_pid = Deps(build_services(load_config())), os.getpid()
        return _bound
