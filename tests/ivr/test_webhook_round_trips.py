"""What a webhook's shortcuts must keep: each still counts one change for the console, the
journey summaries keep what they do not touch, and a returning caller is still known.

A step's state write also bumps the console's change version (one round trip, not two); a
webhook that saves nothing (stale, repeated, raced) is counted by the request hook instead.
Either way the version moves once per webhook, after what it changed was written.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, update

from ivr.infra import journey, live
from ivr.infra.models import Call
from ivr.infra.services import services_of
from tests.conftest import AUTH_TOKEN, BASE_URL, sign
from tests.ivr.helpers import staff
from tests.support.caller import SimulatedCall, flask_transport


class CountingTransport:
    """The test client's transport, counting the webhooks sent and the console changes each
    made (the version's move across the request)."""

    def __init__(self, app, client) -> None:
        self.send = flask_transport(client, BASE_URL)
        self.redis = services_of(app).redis
        self.moves: list[tuple[str, int]] = []

    def __call__(self, url: str, form: dict, signature: str) -> tuple[int, str]:
        before = live.version(self.redis)
        answer = self.send(url, form, signature)
        self.moves.append((url, live.version(self.redis) - before))
        return answer


@pytest.fixture
def counted(app, client):
    staff(app, ["support", "billing"])
    transport = CountingTransport(app, client)
    return SimulatedCall(transport, BASE_URL, AUTH_TOKEN), transport


def test_every_webhook_counts_one_change_saved_or_not(app, counted):
    call, transport = counted
    call.dial()
    menu = call.wait()
    call.press("2")
    call._post(menu.gather_action, {"Digits": "3"})  # stale: saves nothing
    call.hang_up()
    call.hang_up()  # a repeated final status: saves nothing
    assert len(transport.moves) >= 6
    assert all(move == 1 for _, move in transport.moves), transport.moves


def test_racing_webhooks_count_one_change_each(app):
    staff(app, ["support", "billing"])
    r = services_of(app).redis
    for _ in range(5):
        call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)
        call.dial()
        menu = call.wait()
        start = threading.Barrier(2)
        before = live.version(r)

        def send(extra: dict, call=call, start=start, url=menu.gather_action) -> None:
            start.wait()
            call._post(url, extra)

        threads = [threading.Thread(target=send, args=({"Digits": "2"},)),
                   threading.Thread(target=send, args=({"Digits": "3"},))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert live.version(r) - before == 2  # the winner's write and the loser's hook


def test_a_webhook_answer_sets_no_cookie(app, counted, client):
    call, _ = counted
    call.dial()
    params = {**call.params}
    url = BASE_URL + "/voice/incoming"
    response = client.post("/voice/incoming", data=params,
                           headers={"X-Twilio-Signature": sign(url, params)})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_a_caller_who_called_before_is_known_as_returning(app):
    calls = services_of(app).calls
    first = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN)
    first.dial()
    assert calls.load(first.call_sid).returning is False
    again = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL, AUTH_TOKEN,
                          caller=first.params["From"])
    again.dial()
    assert calls.load(again.call_sid).returning is True


def test_a_later_batch_changes_only_the_summary_columns_it_touches(app):
    services = services_of(app)
    db, r = services.db, services.redis

    def push(seq: int, kind: str, node: str | None = None, **meta) -> None:
        event = journey.Event(kind, flow="main", node=node)
        r.rpush(journey.QUEUE_KEY, journey.encode("CAsummary", seq, time.time(), None, event,
                                                  meta or None))

    push(1, "call_start", caller="+14155550111", called="+18005550100", flow="main")
    push(2, "enter", node="welcome")
    assert journey.flush(db, r) == 2
    with db.session() as s:  # another writer (or an admin's fix) sets a column meanwhile
        s.execute(update(Call).where(Call.call_sid == "CAsummary").values(outcome="queued"))
    push(3, "enter", node="main_menu")
    assert journey.flush(db, r) == 1
    with db.session() as s:
        call = s.scalars(select(Call).where(Call.call_sid == "CAsummary")).one()
        assert (call.caller, call.called, call.flow) == ("+14155550111", "+18005550100", "main")
        assert (call.last_node, call.outcome) == ("main_menu", "queued")
