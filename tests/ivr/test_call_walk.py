"""Walk every node of the sample flow and of a second flow through signed webhooks; at each
node press the operator escape and check the caller reaches a person, or a callback offer
when nobody can answer."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ivr.core.flows.loader import load_flows
from ivr.core.flows.schema import CollectNode, MenuNode
from ivr.infra import journey
from ivr.infra.services import services_of
from tests.conftest import AUTH_TOKEN, BASE_URL, SHOP_FLOWS
from tests.ivr.helpers import act, staff
from tests.support.caller import SimulatedCall, Turn, flask_transport

DATA = Path(__file__).parent / "data"
# A Tuesday at 11:00 in New York and London: both calendars are open.
OPEN = dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC)
# A Sunday night: both closed.
CLOSED = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)
# Christmas Day at noon in London and New York: a holiday.
HOLIDAY = dt.datetime(2026, 12, 25, 16, 0, tzinfo=dt.UTC)
UK_CALLER = "+447700900123"
FLOW_FILES = {
    "sample": (SHOP_FLOWS, "+18005550100", ["+18005550199"]),
    "second": (DATA / "second_flows.yaml", "+18005550111", []),
}


def node_of(turn: Turn) -> tuple[str, str]:
    """(flow, node) the call is waiting at, read from the Gather's action URL."""
    query = parse_qs(urlsplit(turn.gather_action).query)
    return query["flow"][0], query["node"][0]


def inputs_for(flows, flow: str, node: str) -> list[str]:
    """Every input worth trying at a node to explore the flow."""
    if node.startswith("@"):
        return ["1", "wait"]
    spec = flows.flows[flow].nodes[node]
    if isinstance(spec, MenuNode):
        return [o.digit for o in spec.options]
    if isinstance(spec, CollectNode):
        return ["1" * spec.min_digits + "#", "9" + "0" * (spec.min_digits - 1) + "#", "1234#"]
    return ["wait"]


def explore(app, number: str, caller: str = "+14155550123"):
    """Breadth-first over input sequences; returns {(flow, node): shortest actions}."""
    client = app.test_client()
    flows = services_of(app).flows.current().file
    paths: dict[tuple[str, str], list[str]] = {}
    todo: deque[list[str]] = deque([[]])
    while todo:
        actions = todo.popleft()
        call = SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN,
                             caller=caller, called=number)
        turn = call.dial()
        for a in actions:
            turn = act(call, a)
        if turn.waiting in ("record", "dial") and len(actions) < 12:
            todo.append([*actions, "next"])
            continue
        if turn.waiting != "gather":
            continue
        where = node_of(turn)
        if where in paths:
            continue
        paths[where] = actions
        if len(actions) < 12:
            todo.extend([*actions, i] for i in inputs_for(flows, *where))
    return paths


@pytest.fixture(params=sorted(FLOW_FILES))
def flow_case(request, app_config, tmp_path):
    path, number, extra_numbers = FLOW_FILES[request.param]
    target = tmp_path / "flows_under_test.yaml"
    shutil.copy(path, target)
    app_config["IVR_FLOWS"] = str(target)
    return request.param, number, extra_numbers


def make_app(app_config, when: dt.datetime):
    from ivr import create_app

    return create_app({**app_config, "CLOCK": lambda: when})


def walk_and_escape(app_config, when: dt.datetime, name: str, number: str,
                    extra_numbers: list[str], caller: str = "+14155550123"
                    ) -> set[tuple[str, str]]:
    """Reach every node a caller can reach at `when`, press the escape there, check where it
    leads; return the nodes reached."""
    app = make_app(app_config, when)
    if when is OPEN:
        staff(app, ["support", "billing", "frontdesk", "sales"])
    flows = services_of(app).flows.current().file
    paths: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for n in [number, *extra_numbers]:
        for where, actions in explore(app, n, caller).items():
            paths.setdefault(where, (n, actions))
    client = app.test_client()
    for (flow, node), (dialled, actions) in sorted(paths.items()):
        call = SimulatedCall(flask_transport(client, BASE_URL), BASE_URL, AUTH_TOKEN,
                             called=dialled, caller=caller)
        call.dial()
        for a in actions:
            act(call, a)
        spec = flows.flows[flow].nodes.get(node) if not node.startswith("@") else None
        escape = flows.defaults.operator.collect_digit if isinstance(spec, CollectNode) else "0"
        turn = call.press(escape)
        where = f"{name}:{flow}.{node} after {actions}"
        if when is OPEN:
            assert turn.waiting == "queue", where
            # The Korean line's callers wait in a Twilio queue of their own (support.ko).
            assert turn.queue.split(".")[0] in ("support", "frontdesk"), where
        else:
            # Closed: nobody can answer, so the escape offers a callback. Never a hang-up.
            assert turn.waiting == "gather", where
            assert node_of(turn)[1] == "@callback", where
            # The offer reads back the caller ID's last four digits (+14155550123), any language.
            assert "0 1 2 3" in turn.text, where
    services_of(app).db.dispose()
    return {p for p in paths if not p[1].startswith("@")}


def test_every_node_escapes_to_a_person_or_a_callback(flow_case, app_config, redis_client):
    name, number, extra_numbers = flow_case
    reached = set()
    for when, caller in ((OPEN, "+14155550123"), (CLOSED, "+14155550123"),
                         (HOLIDAY, "+14155550123"), (OPEN, UK_CALLER)):
        redis_client.flushdb()
        found = walk_and_escape(app_config, when, name, number, extra_numbers, caller)
        assert found, (when, caller)
        reached |= found
    flows = load_flows(app_config["IVR_FLOWS"]).file
    speaking = {(f, n) for f, flow in flows.flows.items() for n, node in flow.nodes.items()
                if node.type in ("message", "menu", "collect", "hangup", "voicemail", "callback")}
    # Across opening hours, closed hours, a holiday and a UK caller, every node that speaks
    # is reached by a caller, and the escape was tried at each.
    assert speaking - reached == set()


def test_journey_is_written_to_sql(app, twilio_post):
    """Nodes, digits, timings and outcome land in `calls` / `call_events`."""
    from sqlalchemy import select

    from ivr.infra.models import Call, CallEvent

    call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)
    call.dial()
    call.wait()  # welcome message ends
    assert call.turn.waiting == "gather"
    call.hang_up(duration=12)
    db, r = services_of(app).db, services_of(app).redis
    assert journey.flush(db, r) > 0
    assert journey.flush(db, r) == 0  # nothing left, nothing written twice
    with db.session() as s:
        row = s.scalars(select(Call).where(Call.call_sid == call.call_sid)).one()
        kinds = [e.kind for e in s.scalars(
            select(CallEvent).where(CallEvent.call_id == row.id).order_by(CallEvent.seq))]
        assert row.caller == "+14155550123"
        assert row.flow == "main"
        assert row.duration_seconds == 12
        assert row.ended_at is not None
        assert row.outcome == "abandoned_in_ivr"
        assert kinds[0] == "call_start"
        assert "enter" in kinds and kinds[-1] == "call_end"


def test_journey_writer_thread_moves_events_without_help(app_config):
    """In a web process the background writer, not the test, puts the journey in SQL."""
    import time

    from sqlalchemy import select

    from ivr import create_app
    from ivr.infra.models import Call

    app = create_app({**app_config, "JOURNEY_WRITER_THREAD": True})
    call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)
    call.dial()
    db = services_of(app).db
    deadline = time.monotonic() + 10
    row = None
    while row is None and time.monotonic() < deadline:
        with db.session() as s:
            row = s.scalars(select(Call).where(Call.call_sid == call.call_sid)).first()
        time.sleep(0.05)
    app.extensions["ivr.journey_writer"].stop()
    assert row is not None and row.last_node == "welcome"
