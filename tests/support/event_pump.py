"""One reader of the Twilio emulator's event journal for many simulated callers at once.

Each caller of a load run waits on what the network did to its call (a menu waiting for keys,
enqueued, bridged, ended). Polling the control API once per caller would load the service
being measured; one `Pump` follows the journal and wakes the callers concerned.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from tests.support.service import Service


@dataclass
class CallView:
    """What the event pump saw of one call."""

    gathers: int = 0  # menu Gathers waiting for the far end
    enqueued: bool = False
    bridged: bool = False
    ended: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)


class Pump:
    """One reader of the emulator's event journal for every caller (not one poll each)."""

    def __init__(self, svc: Service) -> None:
        self.http = requests.Session()
        self.http.auth = ("AC" + "0" * 32, svc.auth_token)
        self.url = svc.url + "/_twilio/_emulator/events"
        self.views: dict[str, CallView] = {}
        self.events: list[dict] = []
        self.missed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def view(self, sid: str) -> CallView:
        with self._lock:
            return self.views.setdefault(sid, CallView())

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            try:
                got = self.http.get(self.url, params={"since": seq, "wait": 1.0},
                                    timeout=30).json()["events"]
            except (requests.RequestException, ValueError):
                time.sleep(0.2)
                continue
            if got and got[0]["seq"] > seq + 1:
                self.missed += got[0]["seq"] - seq - 1  # the journal's window overflowed
            for event in got:
                seq = event["seq"]
                self._apply(event)

    def _apply(self, event: dict) -> None:
        self.events.append(event)
        kind, detail = event["kind"], event.get("detail", {})
        touched = [self.view(event["call"])]
        view = touched[0]
        if kind == "gather" and not detail.get("in_queue"):
            view.gathers += 1
        elif kind == "enqueued":
            view.enqueued = True
        elif kind == "bridged":
            view.bridged = True
            other = self.view(detail.get("with_call", ""))
            other.bridged = True
            touched.append(other)
        elif kind == "ended":
            view.ended = True
        for v in touched:
            with v.cond:
                v.cond.notify_all()

    def wait(self, sid: str, ok, seconds: float) -> bool:
        view = self.view(sid)
        with view.cond:
            return view.cond.wait_for(lambda: ok(view), timeout=seconds)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
