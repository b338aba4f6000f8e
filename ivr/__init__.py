"""Self-hosted IVR and click-to-call service on Twilio webhooks."""

from ivr.app import create_app

__all__ = ["create_app"]
