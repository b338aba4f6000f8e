"""The console's callbacks page through Flask's test client: the filters pick the right rows,
the actions are POST forms with the CSRF token (refused without it), and only admins get in."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from callback.consent import Consent
from callback.deps import deps_of
from callback.models import CallbackAction, CallbackAttempt, CallbackRequest, CallbackStatus
from callback.service import create_request
from tests.callback.conftest import Clock
from tests.console.conftest import sign_in

HTML = {"Accept": "text/html"}
_ROW = re.compile(r'<tr data-id="(\d+)" data-status="([a-z-]+)"')


@pytest.fixture
def clock() -> Clock:
    # A Wednesday, 16:00 UTC: noon in New York (the shop is open), 9:00 in San Francisco.
    return Clock(dt.datetime(2026, 3, 11, 16, 0, tzinfo=dt.UTC))


@pytest.fixture
def app_config(app_config: dict, clock: Clock) -> dict:
    return {**app_config, "CLOCK": clock}


@pytest.fixture
def deps(app):
    return deps_of(app)


def make_request(deps, phone: str, *, status: str | None = None, queue: str = "support",
                 name: str = "", reason: str = "", preferred_time: dt.datetime | None = None,
                 outcomes: tuple[str, ...] = ()) -> CallbackRequest:
    """A request asked for through the service, then (for the states only a call can reach)
    moved to `status`, with one attempt row per outcome in `outcomes`."""
    made = create_request(deps, phone=phone, queue=queue, name=name, reason=reason,
                          preferred_time=preferred_time,
                          consent=Consent.of(deps.setting("CALLBACK_CONSENT_TEXT")))
    req = made.request
    with deps.db.session() as s:
        for n, outcome in enumerate(outcomes, start=1):
            s.add(CallbackAttempt(request_id=req.id, attempt_no=n, mode="agent-first",
                                  status=outcome, created_at=deps.now()))
        if status is not None:
            final = CallbackStatus(status).is_final
            s.execute(update(CallbackRequest).where(CallbackRequest.id == req.id).values(
                status=status, attempts=len(outcomes),
                customer_failures=sum(o == "no-answer" for o in outcomes),
                outcome={"failed": "no-answer", "completed": "connected",
                         "cancelled": "cancelled"}.get(status),
                active_key=None if final else req.active_key,
                finished_at=deps.now() if final else None))
    with deps.db.session() as s:
        return s.get(CallbackRequest, req.id)


def rows_of(html: str) -> list[tuple[int, str]]:
    """The requests listed on the page, in order: (id, status)."""
    return [(int(i), s) for i, s in _ROW.findall(html)]


def actions_of(deps, request_id: int) -> list[tuple[str, str, str, str]]:
    with deps.db.session() as s:
        return [(a.who, a.action, a.from_status, a.to_status) for a in s.scalars(
            select(CallbackAction).where(CallbackAction.request_id == request_id)
            .order_by(CallbackAction.id))]


def status_of(deps, request_id: int) -> str:
    with deps.db.session() as s:
        return s.get(CallbackRequest, request_id).status


@pytest.fixture
def requests(deps, clock):
    """One request in each kind of state, a minute apart, plus one of yesterday."""
    clock.at -= dt.timedelta(days=1)
    old = make_request(deps, "+12125551230", status="cancelled", name="Old")
    clock.at += dt.timedelta(days=1)
    made = {"old": old}
    for key, phone, extra in (
        ("waiting", "+14155550123", {"name": "Mia", "reason": "refund for order 1234"}),
        ("scheduled", "+12125551231",
         {"preferred_time": dt.datetime(2026, 3, 12, 15, 0, tzinfo=dt.UTC)}),
        ("failed", "+12125551232", {"status": "failed", "outcomes": ("no-answer",) * 3}),
        ("dialing", "+12125551233", {"status": "dialing", "outcomes": ("dialing",)}),
        ("completed", "+12125551234", {"status": "completed", "outcomes": ("completed",)}),
        ("billing", "+12125551235", {"queue": "billing"}),
    ):
        clock.advance(60)
        made[key] = make_request(deps, phone, **extra)
    assert made["waiting"].status == "waiting" and made["scheduled"].status == "scheduled"
    return made


def test_filters_return_the_right_rows(admin, requests):
    client, _csrf = admin
    r = requests

    def listed(query: str = "") -> list[int]:
        page = client.get(f"/console/callbacks{query}", headers=HTML)
        assert page.status_code == 200, page.text
        return [i for i, _s in rows_of(page.text)]

    # Newest first.
    assert listed() == [r[k].id for k in ("billing", "completed", "dialing", "failed",
                                          "scheduled", "waiting", "old")]
    assert listed("?status=pending") == [r["billing"].id, r["waiting"].id]
    assert listed("?status=scheduled") == [r["scheduled"].id]
    assert listed("?status=dialing") == [r["dialing"].id]
    assert listed("?status=failed") == [r["failed"].id]
    assert listed("?status=done") == [r["completed"].id, r["old"].id]
    assert listed("?queue=billing") == [r["billing"].id]
    assert listed("?status=pending&queue=support") == [r["waiting"].id]
    # The number as a person types it, matched on the stored E.164 number.
    assert listed("?phone=(415)+555-0123") == [r["waiting"].id]
    assert listed("?phone=212555123") == [r[k].id for k in (
        "billing", "completed", "dialing", "failed", "scheduled", "old")]
    # Created since a day in the shop's time zone: yesterday's request is left out.
    assert listed("?since=2026-03-11") == [r[k].id for k in (
        "billing", "completed", "dialing", "failed", "scheduled", "waiting")]
    assert listed("?since=2026-03-10&status=done") == [r["completed"].id, r["old"].id]


def test_each_row_shows_what_a_supervisor_needs(admin, requests):
    client, _csrf = admin
    page = client.get("/console/callbacks?status=pending&queue=support", headers=HTML).text
    row = page[page.index(f'<tr data-id="{requests["waiting"].id}"'):]
    row = row[:row.index("</tr>")]
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[:11] == [str(requests["waiting"].id), "Wed 11 Mar, 12:01", "support", "en",
                          "+1 415-555-0123", "Mia", "refund for order 1234",
                          "Waiting for an agent", "Now", "0", "—"]
    assert "Retry now" not in row and "Cancel…" in row  # in line: only cancel applies
    # The group counts ignore the status filter, and keep the others.
    assert re.search(r'data-group="pending"[^>]*>Pending<span class="n">1</span>', page)
    assert re.search(r'data-group="all"[^>]*>All<span class="n">6</span>', page)
    scheduled = client.get("/console/callbacks?status=scheduled", headers=HTML).text
    assert re.search(r'class="nowrap next-call">\s*Thu 12 Mar, 11:00</td>', scheduled)
    failed = client.get("/console/callbacks?status=failed", headers=HTML).text
    assert "No answer" in failed and "Retry now" in failed


def test_the_list_is_paged_fifty_at_a_time(admin, deps, clock):
    client, _csrf = admin
    ids = []
    for n in range(53):
        clock.advance(1)
        ids.append(make_request(deps, f"+1212555{1100 + n}").id)
    first = client.get("/console/callbacks", headers=HTML).text
    assert [i for i, _ in rows_of(first)] == ids[::-1][:50]
    assert "page 1 of 2" in first
    second = client.get("/console/callbacks?page=2", headers=HTML).text
    assert [i for i, _ in rows_of(second)] == ids[::-1][50:]
    assert 'rel="prev" href="/console/callbacks"' in second


def test_cancel_retry_and_reschedule_from_the_page(admin, deps, requests):
    client, csrf = admin
    r = requests
    back = "/console/callbacks?status=pending"
    done = client.post(f"/console/callbacks/{r['waiting'].id}/cancel",
                       data={"csrf_token": csrf, "back": back})
    assert done.status_code == 302 and done.headers["Location"] == back
    page = client.get(back, headers=HTML).text
    assert f"Callback #{r['waiting'].id} is cancelled" in page
    assert r["waiting"].id not in [i for i, _ in rows_of(page)]
    assert actions_of(deps, r["waiting"].id) == [("admin", "cancel", "waiting", "cancelled")]

    done = client.post(f"/console/callbacks/{r['failed'].id}/retry",
                       data={"csrf_token": csrf, "back": "/console/callbacks"})
    assert done.status_code == 302
    assert status_of(deps, r["failed"].id) == "waiting"
    assert actions_of(deps, r["failed"].id) == [("admin", "retry", "failed", "waiting")]

    # Thursday 10:30 in the flows' home zone (New York) is 14:30 UTC; 7:30 in San Francisco
    # would not do, but this is a New York number.
    detail = f"/console/callbacks/{r['scheduled'].id}"
    done = client.post(f"{detail}/reschedule",
                       data={"csrf_token": csrf, "back": detail, "at": "2026-03-12T10:30"})
    assert done.status_code == 302 and done.headers["Location"] == detail
    with deps.db.session() as s:
        moved = s.get(CallbackRequest, r["scheduled"].id)
    assert moved.scheduled_for == dt.datetime(2026, 3, 12, 14, 30, tzinfo=dt.UTC)
    page = client.get(detail, headers=HTML).text
    assert f"Callback #{moved.id} will be called at Thu 12 Mar 2026, 10:30 EDT." in page
    assert "call at Thu 12 Mar, 10:30 (was Thu 12 Mar, 11:00)" in page

    listed = client.get("/console/callbacks", headers=HTML).text
    recent = listed[listed.index("Recent actions"):]
    assert re.findall(r'data-request="(\d+)" data-action="(\w+)"', recent) == [
        (str(r["scheduled"].id), "reschedule"), (str(r["failed"].id), "retry"),
        (str(r["waiting"].id), "cancel")]


def test_a_refused_action_shows_why(admin, deps, requests):
    client, csrf = admin
    r = requests
    detail = f"/console/callbacks/{r['scheduled'].id}"
    # 20:00 in New York: the shop closed at 18:00.
    refused = client.post(f"{detail}/reschedule", headers=HTML,
                          data={"csrf_token": csrf, "back": detail, "at": "2026-03-12T20:00"})
    assert refused.status_code == 400
    assert ("We may not call +12125551231 at Thu 12 Mar 2026, 20:00 EDT: the support queue "
            "is closed then. The next allowed time is Fri 13 Mar 2026, 09:00 EDT.") \
        in refused.text
    assert 'value="2026-03-12T20:00"' in refused.text  # what they typed, to correct it
    refused = client.post(f"{detail}/reschedule", headers=HTML,
                          data={"csrf_token": csrf, "back": detail, "at": ""})
    assert refused.status_code == 400 and "Choose the date and time" in refused.text

    refused = client.post(f"/console/callbacks/{r['dialing'].id}/retry", headers=HTML,
                          data={"csrf_token": csrf, "back": "/console/callbacks?status=dialing"})
    assert refused.status_code == 409
    assert (f"Callback #{r['dialing'].id} cannot be retried: it is being dialled right now; "
            "wait for this attempt to end.") in refused.text
    assert [i for i, _ in rows_of(refused.text)] == [r["dialing"].id]  # the list it came from
    assert status_of(deps, r["dialing"].id) == "dialing"
    assert status_of(deps, r["scheduled"].id) == "scheduled"
    assert actions_of(deps, r["dialing"].id) == actions_of(deps, r["scheduled"].id) == []
    assert client.post("/console/callbacks/999/cancel", headers=HTML,
                       data={"csrf_token": csrf}).status_code == 404


def test_the_detail_page_lists_attempts_and_actions(admin, deps, requests):
    client, csrf = admin
    failed = requests["failed"]
    client.post(f"/console/callbacks/{failed.id}/retry", data={"csrf_token": csrf})
    page = client.get(f"/console/callbacks/{failed.id}", headers=HTML)
    assert page.status_code == 200
    assert re.findall(r'data-attempt="(\d)" data-status="([a-z-]+)"', page.text) == [
        ("1", "no-answer"), ("2", "no-answer"), ("3", "no-answer")]
    assert re.findall(r'<tr data-action="(\w+)">', page.text) == ["retry"]
    assert "Failed → Waiting for an agent" in page.text
    assert "+1 212-555-1232" in page.text  # admins see the whole number


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(admin, deps, requests):
    client, _csrf = admin
    for action in ("cancel", "retry"):
        refused = client.post(f"/console/callbacks/{requests['scheduled'].id}/{action}",
                              data={"back": "/console/callbacks"})
        assert refused.status_code == 400
        assert "CSRF" in refused.get_json()["message"]
    forged = client.post(f"/console/callbacks/{requests['scheduled'].id}/cancel",
                         data={"csrf_token": "not-the-token"})
    assert forged.status_code == 400
    assert status_of(deps, requests["scheduled"].id) == "scheduled"
    assert actions_of(deps, requests["scheduled"].id) == []


def test_an_agent_is_refused(app, add_agent, deps, requests):
    _agent, token = add_agent()
    client = app.test_client()
    csrf = sign_in(client, token)
    assert client.get("/console/callbacks", headers=HTML).status_code == 403
    assert client.get(f"/console/callbacks/{requests['waiting'].id}",
                      headers=HTML).status_code == 403
    refused = client.post(f"/console/callbacks/{requests['waiting'].id}/cancel",
                          data={"csrf_token": csrf})
    assert refused.status_code == 403
    assert status_of(deps, requests["waiting"].id) == "waiting"
    assert actions_of(deps, requests["waiting"].id) == []


def test_signed_out_visitors_are_sent_to_sign_in(client, requests):
    page = client.get("/console/callbacks", headers=HTML)
    assert page.status_code == 302 and "/console/signin" in page.headers["Location"]
    assert client.post(f"/console/callbacks/{requests['waiting'].id}/cancel").status_code \
        == 400  # no session, no CSRF token: refused before anything else
