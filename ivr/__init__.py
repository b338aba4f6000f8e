"""Self-hosted IVR and click-to-call service on Twilio webhooks.

`from ivr import create_app` is the service's front door (gunicorn: 'ivr:create_app()'). It is
loaded on first use, so importing a pure part such as `ivr.core.engine` loads no web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from ivr.app import create_app

        return create_app
    raise AttributeError(f"module 'ivr' has no attribute {name!r}")
