"""Where packages plug into the call engine's ports, without the call webhooks importing them.

The engine asks its ports for a callback or a speech stream; `callback` and `speech.live`
register the functions that answer on the app, under these keys, when they are wired in.
"""

from __future__ import annotations

# (app, *, number, caller, queue, call_sid, context) -> CallbackOutcome
CALLBACK_REQUESTS = "ivr.callback_requests"
# (state, node) -> the wss:// URL of a media stream for that menu, or None
SPEECH_STREAMS = "ivr.speech_stream_url"
