"""The call-flow engine: pure; it turns (flows, call state, input) into TwiML and events."""
