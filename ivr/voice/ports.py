"""The engine's window on the world, for one webhook: the clock, URLs, staffing, callbacks,
and live speech. Callbacks and speech plug in through hooks their packages register on the
app, so the call webhooks import neither."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask

from ivr.core.callstate import CallState
from ivr.core.engine.types import CallbackOutcome, StreamOffer
from ivr.core.flows.schema import FlowFile
from ivr.core.hours import is_open
from ivr.infra import paths
from ivr.infra.agents import staffed_count
from ivr.infra.hooks import CALLBACK_REQUESTS, SPEECH_STREAMS
from ivr.infra.services import services_of

# The engine names the webhooks it needs; these are their paths.
ENDPOINTS = {
    "gather": paths.GATHER,
    "continue": paths.CONTINUE,
    "dialed": paths.DIALED,
    "recorded": paths.RECORDED,
    "queue_wait": paths.QUEUE_WAIT,
    "queue_left": paths.QUEUE_LEFT,
    "speech_status": paths.SPEECH_STREAM_STATUS,
}


class WebPorts:
    """The engine's ports, for one request."""

    def __init__(self, app: Flask, flows: FlowFile) -> None:
        self.app = app
        self.flows = flows
        self.services = services_of(app)

    def now(self) -> dt.datetime:
        return self.services.now()

    def url(self, endpoint: str, **params: str) -> str:
        return self.services.urls.url(ENDPOINTS[endpoint], **params)

    def queue_available(self, queue: str) -> bool:
        cfg = self.flows.queues.get(queue)
        if cfg is None:
            return False
        now = self.now()
        if not is_open(self.flows.hours.get(cfg.hours) if cfg.hours else None, now):
            return False
        return staffed_count(self.services.redis, queue, now) > 0

    def request_callback(self, *, number: str, queue: str, state: CallState) -> CallbackOutcome:
        requests = self.app.extensions.get(CALLBACK_REQUESTS)
        if requests is None:
            return CallbackOutcome(accepted=False, reason="callbacks are not set up")
        context: dict[str, Any] = {k: v for k, v in state.vars.items() if not k.startswith("_")}
        context.update(flow=state.flow, node=state.node)
        # The callback is placed in the language the caller chose on this call.
        return requests(self.app, number=number, caller=state.caller, queue=queue,
                        call_sid=state.call_sid, context=context, language=state.language)

    def speech_stream_url(self, state: CallState, node: str) -> StreamOffer | None:
        hook = self.app.extensions.get(SPEECH_STREAMS)
        return hook(state, node) if hook else None
