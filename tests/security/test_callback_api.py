"""Holes 4 to 8 of the security review, one test each (every one failed on the code before the
fix): consent that was never given, a web API open to every site and to scripts, words a
requester typed spoken to the person called, input stored or echoed whole, and an answer that
told strangers whether a number was waiting.

The app is the callback fixtures' (a real Redis and database, the Twilio REST stand-in); the
proof of work is turned on where a test is about it, with a low cost so solving is quick (the
check is the same at any cost)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from callback.consent import Consent
from callback.errors import excerpt
from callback.models import CallbackHandle, CallbackRequest
from tests.callback.conftest import AGENT_NUMBER, CUSTOMER, ask
from tests.support.proof import solve_over_http

SHOP = "https://shop.example"


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CALLBACK_ALLOWED_ORIGINS": SHOP}


def stored(deps) -> int:
    with deps.db.session() as s:
        return (s.scalar(select(func.count()).select_from(CallbackRequest))
                + s.scalar(select(func.count()).select_from(CallbackHandle)))


def post(client, body, **kwargs):
    return client.post("/callbacks", json=body, **kwargs)


# --- 4. real consent ------------------------------------------------------------------------------
@pytest.mark.parametrize("consent", [None, False, "true", 1, "yes"])
def test_a_request_without_consent_is_refused_and_not_stored(client, deps, consent):
    body = {"phone": CUSTOMER} if consent is None else {"phone": CUSTOMER, "consent": consent}
    resp = post(client, body)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "consent_required"
    assert "tick the box" in resp.get_json()["message"]
    assert stored(deps) == 0


def test_the_stored_wording_is_ours_with_its_version(client, deps):
    sent = post(client, {"phone": CUSTOMER, "consent": True, "consent_text": "x" * 5000})
    assert (sent.status_code, sent.get_json()["error"]) == (400, "invalid_request")
    assert stored(deps) == 0
    info = client.get("/callbacks/info").get_json()
    stale = post(client, {"phone": CUSTOMER, "consent": True, "consent_version": "c-000000000000"})
    assert (stale.status_code, stale.get_json()["error"]) == (400, "consent_required")
    assert "changed since this page was loaded" in stale.get_json()["message"]
    made = ask(client, {"phone": CUSTOMER, "consent_version": info["consent_version"]})
    with deps.db.session() as s:
        row = s.scalar(select(CallbackRequest).where(CallbackRequest.public_id == made["id"]))
    ours = Consent.of(deps.setting("CALLBACK_CONSENT_TEXT"))
    assert (row.consent_text, row.consent_version) == (ours.text, ours.version)
    assert info["consent_version"] == ours.version and info["consent_text"] == ours.text


# --- 5. the web API is for our own pages ----------------------------------------------------------
def test_cors_grants_only_the_allowed_origins(client):
    for origin, granted in ((SHOP, SHOP), ("https://evil.example", None)):
        pre = client.options("/callbacks", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert pre.headers.get("Access-Control-Allow-Origin") == granted
        info = client.get("/callbacks/info", headers={"Origin": origin})
        assert info.headers.get("Access-Control-Allow-Origin") == granted


def test_cors_covers_the_callback_api_errors_too_and_nothing_else(client):
    """The grant is made on the callback API's refusals and on a path under it that does not
    exist (an error answer a page must be able to read), and never on a call webhook."""
    refused = post(client, {"phone": CUSTOMER}, headers={"Origin": SHOP})
    assert refused.status_code == 400
    assert refused.headers.get("Access-Control-Allow-Origin") == SHOP
    unknown = client.get("/callbacks/no/such/page", headers={"Origin": SHOP})
    assert unknown.status_code == 404
    assert unknown.headers.get("Access-Control-Allow-Origin") == SHOP
    webhook = client.post("/voice/incoming", headers={"Origin": SHOP})
    assert webhook.status_code == 403  # unsigned
    assert "Access-Control-Allow-Origin" not in webhook.headers


def test_a_post_from_another_site_is_refused(client, deps, callback_app):
    evil = post(client, {"phone": CUSTOMER, "consent": True},
                headers={"Origin": "https://evil.example"})
    assert (evil.status_code, evil.get_json()["error"]) == (403, "origin_refused")
    assert stored(deps) == 0
    # The service's own pages and the listed shop are welcome.
    for origin in ("https://ivr.example.com", SHOP):
        ok = post(client, {"phone": CUSTOMER, "consent": True}, headers={"Origin": origin})
        assert ok.status_code == 202, ok.get_json()


def test_the_proof_of_work_is_on_by_default_and_good_once(client, deps, callback_app):
    callback_app.config.pop("CALLBACK_PROOF_OF_WORK")  # the default
    callback_app.config["CALLBACK_POW_COST"] = 50
    bare = post(client, {"phone": CUSTOMER, "consent": True})
    assert (bare.status_code, bare.get_json()["error"]) == (403, "proof_required")
    proof = solve_over_http(client.get, "")
    made = post(client, {"phone": CUSTOMER, "consent": True, "altcha": proof})
    assert made.status_code == 202, made.get_json()
    again = post(client, {"phone": "+14155550199", "consent": True, "altcha": proof})
    assert (again.status_code, again.get_json()["error"]) == (403, "proof_required")
    assert "already used" in again.get_json()["message"]
    assert stored(deps) == 1


def test_the_proof_of_work_can_be_turned_off(client, callback_app):
    callback_app.config["CALLBACK_PROOF_OF_WORK"] = "off"
    assert post(client, {"phone": CUSTOMER, "consent": True}).status_code == 202
    assert client.get("/callbacks/info").get_json()["proof_of_work"] is False


def test_rate_limits_are_counted_in_redis_by_the_limits_library(client, deps, callback_app):
    callback_app.config["CALLBACK_LIMIT_PER_NUMBER"] = "1/600"
    deps.guard = type(deps.guard).from_config(callback_app.config)
    assert post(client, {"phone": CUSTOMER, "consent": True}).status_code == 202
    second = post(client, {"phone": CUSTOMER, "consent": True})
    assert second.status_code == 429 and int(second.headers["Retry-After"]) > 500
    assert deps.redis.keys("ivr:cb:limit:LIMITER/number/*")


# --- 6. nothing a requester typed is spoken to the person called -------------------------------
def test_the_person_called_hears_only_the_shops_words(callback_app, client, deps, agent,
                                                      twilio_cloud, run_jobs):
    callback_app.config["CALLBACK_MODE"] = "customer-first"
    typed = "Grandma this is the police, press 1 and read us your card"
    post(client, {"phone": CUSTOMER, "consent": True, "name": typed, "reason": "a parcel"})
    run_jobs()
    twilio_cloud.drive_pending()
    customer = next(c for c in twilio_cloud.placed if c.to == CUSTOMER)
    assert customer.said, "the customer's leg spoke"
    assert all("police" not in line and "Grandma" not in line for line in customer.said)
    assert any(line.startswith("Hello. You asked us to call you back") for line in customer.said)
    # The agent hears who and why, when they answer and before they are joined.
    assert customer.whispered == [
        f"Callback for the support line. English caller. {typed}. About: a parcel. They asked "
        "just now. Connecting you now."]
    assert any('url="https://ivr.example.com/callbacks/voice/whisper?attempt=' in doc
               and AGENT_NUMBER in doc for doc in customer.documents)


# --- 7. bounded input ---------------------------------------------------------------------------
@pytest.mark.parametrize("field, size", [
    ("phone", 1_000_000), ("preferred_time", 20_000_000), ("name", 5_000_000),
])
def test_a_huge_field_is_refused_without_being_read_or_echoed(client, deps, field, size):
    resp = post(client, {"phone": CUSTOMER, "consent": True, field: "9" * size})
    assert (resp.status_code, resp.get_json()["error"]) == (413, "too_large")
    assert len(resp.get_data()) < 300
    assert stored(deps) == 0


@pytest.mark.parametrize("field, limit", [
    ("phone", 32), ("name", 100), ("reason", 500), ("queue", 64), ("preferred_time", 40),
])
def test_each_field_has_a_limit(client, deps, field, limit):
    ok = {"phone": CUSTOMER, "consent": True}
    resp = post(client, {**ok, field: "7" * (limit + 1)})
    assert resp.status_code == 400
    assert resp.get_json()["message"] == f"'{field}' is too long: at most {limit} characters."
    assert stored(deps) == 0


def test_errors_quote_a_short_printable_excerpt(client):
    resp = post(client, {"phone": "555\x1b[31mHELLO\nWORLD-----x", "consent": True})
    message = resp.get_json()["message"]
    assert resp.status_code == 400
    assert "\x1b" not in message and "\n" not in message
    assert "'555 [31mHELLO WORLD-----...'" in message  # 24 characters, then "..."
    assert excerpt("a\x00b\u202ec" + "d" * 30) == "a?b?cddddddddddddddddddd..."


@pytest.mark.parametrize("number", ["+18005550100", "+1 (800) 555-0199"])
def test_the_service_never_calls_its_own_numbers(client, deps, number):
    resp = post(client, {"phone": number, "consent": True})
    assert (resp.status_code, resp.get_json()["error"]) == (400, "number_refused")
    assert "our own number" in resp.get_json()["message"]
    assert stored(deps) == 0


def test_a_long_forwarded_address_from_a_trusted_proxy_is_kept_short(app_config, deps):
    from ivr import create_app

    app = create_app({**app_config, "TRUSTED_PROXIES": "1"})
    resp = app.test_client().post("/callbacks", json={"phone": CUSTOMER, "consent": True},
                                  headers={"X-Forwarded-For": "z" * 300})
    assert resp.status_code == 202, resp.get_json()
    with deps.db.session() as s:
        address = s.scalar(select(CallbackRequest.client_address))
    assert len(address) <= 64


# --- 8. no oracle -------------------------------------------------------------------------------
def test_asking_for_a_waiting_number_reveals_nothing_about_it(client, deps):
    first = post(client, {"phone": CUSTOMER, "consent": True, "name": "Mia"})
    second = post(client, {"phone": CUSTOMER, "consent": True})
    assert first.status_code == second.status_code == 202
    a, b = first.get_json(), second.get_json()
    assert a.keys() == b.keys() == {"id", "token", "status", "phone", "message"}
    assert a["id"] not in second.get_data(as_text=True)
    # Without a token nothing is shown; a wrong token and an unknown id answer alike.
    assert client.get(f"/callbacks/{a['id']}").status_code == 401
    wrong = client.get(f"/callbacks/{a['id']}", headers={"X-Callback-Token": b["token"]})
    unknown = client.get("/callbacks/ffffffffffffffff", headers={"X-Callback-Token": b["token"]})
    assert wrong.status_code == unknown.status_code == 403
    assert wrong.get_json() == unknown.get_json()


def test_tokens_are_never_taken_from_the_url(client, deps):
    made = post(client, {"phone": CUSTOMER, "consent": True}).get_json()
    in_query = client.delete(f"/callbacks/{made['id']}?token={made['token']}")
    assert in_query.status_code == 401
    shown = client.get(f"/callbacks/{made['id']}?token={made['token']}")
    assert shown.status_code == 401
    with deps.db.session() as s:
        assert s.scalar(select(CallbackRequest.status)) == "waiting"
    by_header = client.delete(f"/callbacks/{made['id']}",
                              headers={"X-Callback-Token": made["token"]})
    assert by_header.get_json()["status"] == "cancelled"
