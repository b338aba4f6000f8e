"""The layering holds at run time too: the pure core loads no web, Redis or SQL library, and
speech recognition loads nothing of the IVR (import-linter checks the same statically)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_LIBRARIES = ("flask", "werkzeug", "redis", "sqlalchemy", "rq", "requests", "alembic")


def _loaded_after(*modules: str) -> set[str]:
    code = ("import json, sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out))


def _top(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("modules", [
    ("ivr.core.engine.engine",),
    ("ivr.core.flows.schema", "ivr.core.flows.loader"),
    ("ivr.core.waits.estimator",),
    ("callback.rules", "callback.numbers"),
])
def test_the_pure_core_loads_no_io_library(modules):
    loaded = _top(_loaded_after(*modules))
    assert not loaded & set(IO_LIBRARIES), f"{modules} loaded {sorted(loaded & set(IO_LIBRARIES))}"
    assert "ivr.app" not in _loaded_after(*modules)


def test_speech_recognition_loads_nothing_of_the_ivr():
    loaded = _loaded_after("speech.recognizer", "speech.matcher", "speech.models")
    assert not {m for m in loaded if m == "ivr" or m.startswith(("ivr.", "callback"))}


def test_the_front_door_still_opens():
    """`from ivr import create_app` (and gunicorn's 'ivr:create_app()') works, lazily."""
    from ivr import create_app
    from ivr.app import create_app as factory

    assert create_app is factory
