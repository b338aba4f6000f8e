"""A web process's start-up objects, kept out of the garbage collector's way.

A web process imports Flask, SQLAlchemy, twilio and numpy and builds its app before it serves:
some 150,000 objects that live as long as it does. Python's full (generation 2) collection
walks every one of them while it holds the GIL: 170-245 ms per collection in a Procfile worker
under the capacity bench, every 20-30 s. For that long no webhook of that worker is answered,
and no recognition thread gets the GIL back to hand in its result. `gc.freeze()` moves them to
a permanent generation that collections skip; whatever the process makes later is collected as
before. It is done once the app is built (gunicorn's `post_worker_init`, `ivr serve`), and in
gunicorn's arbiter before it forks, so that a worker's collections do not write to the
arbiter's objects, and un-share their pages (https://docs.python.org/3/library/gc.html#gc.freeze).
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect what start-up left as garbage, then exempt every object left from later
    collections; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
