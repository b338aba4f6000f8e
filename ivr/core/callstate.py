"""The call-state record: where a call is in its flow and what it has told us (pure data;
`ivr.infra.call_store` keeps it in Redis)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields


@dataclass
class CallState:
    """Where a call is in its flow and what it has told us so far."""

    call_sid: str
    flow: str
    version: str
    node: str
    language: str
    caller: str = ""
    called: str = ""
    vars: dict[str, str] = field(default_factory=dict)
    no_input: int = 0  # consecutive no-input retries at the current node
    invalid: int = 0  # consecutive invalid-input retries at the current node
    returning: bool = False
    started_at: float = field(default_factory=time.time)
    node_entered_at: float = field(default_factory=time.time)
    seq: int = 0  # journey event counter
    # Sub-step inside a node that takes several exchanges (callback offer, voicemail).
    step: str = ""
    # One more for every document the engine renders. Each action URL of a document carries it
    # (`t`), so a late, repeated or raced webhook from an older document is recognised as stale
    # and never moves the call; the store saves a new turn only over the one it was computed on.
    turn: int = 0
    # The final call status once the call has ended (the state is then kept briefly, so late
    # webhooks find the call over instead of starting it again).
    ended: str = ""

    def at(self) -> dict[str, str]:
        """The query of every action URL the current document renders: where, and which turn."""
        return {"flow": self.flow, "node": self.node, "t": str(self.turn)}

    def to_json(self) -> str:
        # vars(self), not dataclasses.asdict: no deep copy on every webhook.
        return json.dumps(vars(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str) -> CallState:
        data = json.loads(raw)
        # Fields a newer release wrote (a rolling deploy) are left out, not fatal.
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})


_FIELDS = frozenset(f.name for f in fields(CallState))
