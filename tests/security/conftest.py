"""The security tests use the callback fixtures (a Twilio REST stand-in, a clock, agents)."""

from tests.callback.conftest import (  # noqa: F401 (fixtures)
    agent,
    always_open_flows,
    app_config,
    callback_app,
    clock,
    deps,
    run_jobs,
    twilio_cloud,
)
