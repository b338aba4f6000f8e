"""The call-state record: where a call is in its flow and what it has told us (pure data;
`ivr.infra.call_store` keeps it in Redis)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field


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

    def to_json(self) -> str:
        # vars(self), not dataclasses.asdict: no deep copy on every webhook.
        return json.dumps(vars(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str) -> CallState:
        return cls(**json.loads(raw))
