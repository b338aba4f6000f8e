"""Every URL path Twilio requests, in one place: the blueprints route them, `PublicUrls` builds
them, and a test checks that each one is routed."""

# Calls in the flows (ivr.voice.webhooks). Twilio's number points at INCOMING, FALLBACK and STATUS.
INCOMING = "/voice/incoming"
GATHER = "/voice/gather"
CONTINUE = "/voice/continue"
DIALED = "/voice/dialed"
RECORDED = "/voice/recorded"
STATUS = "/voice/status"
FALLBACK = "/voice/fallback"
QUEUE_WAIT = "/voice/queue/wait"
QUEUE_LEFT = "/voice/queue/left"

# The hold queue's own webhooks (ivr.hold.webhooks).
HOLD_KEY = "/voice/hold/key"
HOLD_AGENT = "/voice/hold/agent"
HOLD_AGENT_ANSWER = "/voice/hold/agent/answer"
HOLD_AGENT_STATUS = "/voice/hold/agent/status"
HOLD_AGENT_DIALED = "/voice/hold/agent/dialed"
HOLD_BRIDGING = "/voice/hold/bridging"

# Callback calls (callback.webhooks).
CALLBACK_AGENT = "/callbacks/voice/agent"
CALLBACK_DIALED = "/callbacks/voice/dialed"
CALLBACK_CUSTOMER = "/callbacks/voice/customer"
CALLBACK_CONNECT = "/callbacks/voice/connect"
CALLBACK_WHISPER = "/callbacks/voice/whisper"  # customer-first: the agent hears who and why
CALLBACK_PICKED_UP = "/callbacks/voice/picked-up"  # agent-first: the customer answered
CALLBACK_STATUS = "/callbacks/status"

# Live speech (speech.live.stream, speech.live.fallback).
SPEECH_STREAM = "/speech/stream"
SPEECH_STREAM_STATUS = "/speech/stream-status"
SPEECH_RECORD = "/speech/record"
SPEECH_RECORDED = "/speech/recorded"

ALL = tuple(value for key, value in dict(globals()).items() if key.isupper())
