"""Hot reload: serve the newest good flows file, keep every version a live call may still need.

New calls take `current()`; a call already under way keeps asking for the version it started
with via `get(version)`. Each version's text also goes to Redis (`ivr:flows:<version>`) so a web
process that never saw that version (another gunicorn worker or host) can still finish the call.
A broken edit is refused: the problems are logged and kept in `last_problems`, and the last good
version stays current.

Every load of a changed file (the first one at start too), taken or refused, is recorded in a
capped Redis list (`ivr:flows:reloads`) that every process shares, for the console's flows page:
`reloads()` reads it, `loaded_at` says when the serving version went live. Several processes
notice the same save; the newest entry is the dedup key, so one save is one entry, while a
quick revert (good, broken, good again) is three.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from redis.exceptions import RedisError

from ivr.core.flows.loader import LoadedFlows, Problem, parse_flows, read_source, version_of
from ivr.errors import FlowError, IvrError

log = logging.getLogger(__name__)

REDIS_KEY = "ivr:flows:{version}"
# Longer than any call can last; refreshed while a version is current.
DEFAULT_TTL = 7 * 24 * 3600
# Errors that mean "Redis is unreachable or unhappy": the registry works on without it.
REDIS_ERRORS = (RedisError, OSError)
HISTORY_KEY = "ivr:flows:reloads"
HISTORY_HEAD_KEY = "ivr:flows:reloads:newest"  # the identity of the list's newest entry
HISTORY_LENGTH = 20
HISTORY_PROBLEMS = 20  # problems kept per entry; `problem_count` has the full count

# Push an entry unless the newest one is the same version with the same outcome (another process
# saw the same save first); then return that newest entry instead. Atomic, so processes racing
# on one save record it once.
_RECORD = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  return redis.call('LINDEX', KEYS[1], 0)
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return false
"""


class UnknownFlowVersion(IvrError, LookupError):
    """No process memory or Redis holds this flows version any more."""


@dataclass(frozen=True)
class Reload:
    """One load of a changed flows file: when, which version, taken or refused, and why."""

    at: float  # epoch seconds
    version: str | None  # None when the file could not even be read
    ok: bool
    problem_count: int  # errors of a refused edit, warnings of a taken one
    problems: tuple[str, ...]  # the first HISTORY_PROBLEMS, as `ivr flows check` prints them
    file: str

    @property
    def identity(self) -> str:
        """What makes two processes' records of one save the same entry."""
        what = self.version or hashlib.sha256("\n".join(self.problems).encode()).hexdigest()[:12]
        return f"{what}:{'taken' if self.ok else 'refused'}"

    def to_json(self) -> str:
        """The entry as stored in the Redis list."""
        return json.dumps({**asdict(self), "problems": list(self.problems)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Reload | None:
        """An entry read back; None for one this code cannot read."""
        try:
            data = json.loads(raw)
            return cls(at=float(data["at"]), version=data.get("version"), ok=bool(data["ok"]),
                       problem_count=int(data["problem_count"]),
                       problems=tuple(str(p) for p in data.get("problems", ())),
                       file=str(data.get("file", "")))
        except (ValueError, TypeError, KeyError):
            return None


def _signature(path: str) -> tuple[int, int, int] | None:
    """What changes when the file is saved (or replaced by an editor); None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class FlowRegistry:
    """The flows file as the running service sees it: current version plus older ones."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        redis: Any | None = None,
        *,
        check_interval: float = 1.0,
        ttl: int = DEFAULT_TTL,
        keep: int = 32,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        background: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.background = background
        self.redis = redis
        self.check_interval = check_interval
        self.ttl = ttl
        self.keep = max(keep, 1)
        self.last_problems: list[Problem] = []
        self._clock = clock
        # `clock` only measures intervals; reload times are shown to people, so they need epoch
        # seconds (the service may pass its own, possibly shifted, clock).
        self.wall_clock = wall_clock
        self.loaded_at = wall_clock()  # when the current version went live
        self._history: deque[Reload] = deque(maxlen=HISTORY_LENGTH)  # this process's own
        self._lock = threading.Lock()  # the versions in memory
        self._checking = threading.Lock()  # one look at the file at a time
        self._versions: OrderedDict[str, LoadedFlows] = OrderedDict()
        self._stored_at: dict[str, float] = {}
        self._signature = _signature(self.path)
        # A broken file at start-up is fatal: there is no good version to fall back on.
        self._current = parse_flows(read_source(self.path), self.path)
        self._checked_at = clock()
        self._remember(self._current)
        self._record(self._current.version, self._current.warnings, ok=True, went_live=True)
        for warning in self._current.warnings:
            log.warning("%s", warning)

    @property
    def version(self) -> str:
        """The version new calls start on."""
        return self._current.version

    def current(self) -> LoadedFlows:
        """The flows for a new call; looks at the file at most every `check_interval` seconds.

        In the service (`background=True`) the look runs in a thread of its own and this
        returns at once: a webhook never waits for a stat, or for the parse of an edited (or
        hostile) file; a new version serves from the next request after its parse.
        """
        if self._clock() - self._checked_at < self.check_interval:
            return self._current
        if not self.background:
            with self._checking:
                if self._clock() - self._checked_at >= self.check_interval:
                    self._check()
        elif self._checking.acquire(blocking=False):
            self._checked_at = self._clock()
            threading.Thread(target=self._check_in_background, name="flows-reload",
                             daemon=True).start()
        return self._current

    def reload(self) -> LoadedFlows:
        """Look at the file now (e.g. after an admin's save); return what is current after it."""
        with self._checking:
            self._check()
        return self._current

    def _check_in_background(self) -> None:
        try:
            self._check()
        except Exception:  # a failed look must not stop the next one
            log.exception("looking at the flows file %s failed", self.path)
        finally:
            self._checking.release()

    def get(self, version: str) -> LoadedFlows:
        """The flows a call started with, from memory or Redis; UnknownFlowVersion if gone."""
        with self._lock:
            loaded = self._versions.get(version)
            if loaded is not None:
                self._versions.move_to_end(version)
                return loaded
        text = self._fetch(version)
        if text is None or version_of(text) != version:
            raise UnknownFlowVersion(f"flows version {version} is not in memory or in Redis")
        loaded = parse_flows(text, self.path)
        with self._lock:
            self._versions[version] = loaded
            self._trim()
        return loaded

    def reloads(self, limit: int = HISTORY_LENGTH) -> list[Reload]:
        """The newest `limit` loads of a changed file, newest first, as every process saw them.

        Without Redis (or while it is down) this process's own loads are all there is.
        """
        limit = max(0, min(limit, HISTORY_LENGTH))
        if limit == 0:
            return []
        if self.redis is not None:
            try:
                raw = self.redis.lrange(HISTORY_KEY, 0, limit - 1)
            except REDIS_ERRORS as exc:
                log.warning("could not read the flows reloads from Redis: %s", exc)
            else:
                return [r for r in map(Reload.from_json, raw) if r is not None]
        with self._lock:
            return list(self._history)[:limit]

    # --- internals --------------------------------------------------------------------------

    def _check(self) -> None:
        self._checked_at = self._clock()
        self._keep_stored()
        signature = _signature(self.path)
        if signature == self._signature:
            return
        # Remember the signature even for a broken file, so it is parsed and logged only once.
        self._signature = signature
        version: str | None = None
        try:
            text = read_source(self.path)
            version = version_of(text)
            if version == self._current.version:
                # A touch, or a broken edit reverted: record it (a revert is news; a touch of an
                # unchanged file is the newest entry already, so it adds nothing).
                self.last_problems = []
                self._record(version, self._current.warnings, ok=True)
                return
            with self._lock:
                known = self._versions.get(version)
            loaded = known or parse_flows(text, self.path)
        except FlowError as exc:
            self.last_problems = list(exc.problems)
            log.error(
                "flows file %s refused (%d problems); still serving version %s",
                self.path,
                len(exc.problems),
                self._current.version,
            )
            for problem in exc.problems:
                log.error("%s", problem)
            self._record(version, exc.problems, ok=False)
            return
        previous, self._current = self._current.version, loaded
        self.last_problems = []
        self._remember(loaded)
        self._record(version, loaded.warnings, ok=True, went_live=True)
        log.info("flows reloaded from %s: version %s (was %s)", self.path, version, previous)
        for warning in loaded.warnings:
            log.warning("%s", warning)

    def _remember(self, loaded: LoadedFlows) -> None:
        with self._lock:
            self._versions[loaded.version] = loaded
            self._versions.move_to_end(loaded.version)
            self._trim()
        self._store(loaded)

    def _record(self, version: str | None, problems: Iterable[object], *, ok: bool,
                went_live: bool = False) -> None:
        """Add this load to the shared history; never fails the load itself."""
        found = [str(p) for p in problems]
        entry = Reload(at=self.wall_clock(), version=version, ok=ok, problem_count=len(found),
                       problems=tuple(found[:HISTORY_PROBLEMS]), file=self.path)
        with self._lock:
            # Like the shared list: a touch of an unchanged file is not a new entry.
            if not self._history or self._history[0].identity != entry.identity:
                self._history.appendleft(entry)
        if went_live:
            self.loaded_at = entry.at
        if self.redis is None:
            return
        try:
            newest = self.redis.register_script(_RECORD)(
                keys=[HISTORY_KEY, HISTORY_HEAD_KEY],
                args=[entry.identity, entry.to_json(), HISTORY_LENGTH])
        except REDIS_ERRORS as exc:
            log.warning("could not record the flows reload in Redis: %s", exc)
            return
        seen = Reload.from_json(newest) if newest else None
        if went_live and seen is not None and seen.identity == entry.identity:
            # Another process recorded this version going live first: agree with its time.
            self.loaded_at = seen.at

    def _trim(self) -> None:
        while len(self._versions) > self.keep:
            oldest = next(iter(self._versions))
            if oldest == self._current.version:
                self._versions.move_to_end(oldest)
                continue
            del self._versions[oldest]

    def _store(self, loaded: LoadedFlows) -> None:
        if self.redis is None:
            return
        key = REDIS_KEY.format(version=loaded.version)
        try:
            self.redis.set(key, loaded.source.encode("utf-8"), ex=self.ttl)
        except REDIS_ERRORS as exc:
            log.warning("could not store flows version %s in Redis: %s", loaded.version, exc)
            return
        self._stored_at[loaded.version] = self._clock()

    def _keep_stored(self) -> None:
        """Store the current version again if Redis was down or its copy is getting old."""
        stored = self._stored_at.get(self._current.version)
        if self.redis is not None and (stored is None or self._clock() - stored > self.ttl / 4):
            self._store(self._current)

    def _fetch(self, version: str) -> str | None:
        if self.redis is None:
            return None
        try:
            raw = self.redis.get(REDIS_KEY.format(version=version))
        except REDIS_ERRORS as exc:
            log.warning("could not read flows version %s from Redis: %s", version, exc)
            return None
        if raw is None:
            return None
        return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
