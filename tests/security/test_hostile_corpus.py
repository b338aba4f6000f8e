"""A corpus of hostile requests: each gets its exact refusal, and none stores or dials anything.

One app with every guard as a deployment has it: the proof of work on (at a low cost, so the
corpus can solve challenges quickly where a case needs a valid one), one allowed shop origin, an
admin token and a metrics token. Before each case a snapshot is taken of everything a request
could leave behind: callback rows, handles and attempts, call state and the shared line in Redis,
and the REST stand-in's dials. After the case the snapshot must be the same.

413 is the answer for a body over the limit (Content Too Large: the body is not read), where the
issue lists 400; every other refusal is one of 400, 401, 403 and 429.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from callback.models import CallbackAttempt, CallbackHandle, CallbackRequest
from tests.callback.conftest import CUSTOMER
from tests.conftest import AUTH_TOKEN, BASE_URL, sign
from tests.support.proof import solve_over_http

SHOP = "https://shop.example"
ADMIN = "adm-" + "Q7v9xK2mR4tW8pZ3nB6cJ1hF"
METRICS = "met-" + "L5sD0gY7uE2iO9aP4kT6wN3r"
CALL = {"CallSid": "CA" + "b" * 32, "AccountSid": "AC" + "1" * 32, "From": CUSTOMER,
        "To": "+18005550100", "CallStatus": "ringing", "Direction": "inbound"}
FORM = {"phone": CUSTOMER, "consent": True}


@pytest.fixture
def app_config(app_config: dict) -> dict:
    return {**app_config, "CALLBACK_PROOF_OF_WORK": "on", "CALLBACK_POW_COST": 20,
            "CALLBACK_ALLOWED_ORIGINS": SHOP, "IVR_ADMIN_TOKEN": ADMIN,
            "METRICS_TOKEN": METRICS, "CALLBACK_LIMIT_PER_ADDRESS": "3/600"}


@dataclass
class Ctx:
    client: object
    deps: object
    cloud: object
    made: dict = field(default_factory=dict)  # what a case's `prepare` left for it

    def proof(self) -> str:
        return solve_over_http(self.client.get, "")

    def ask(self, body: dict, **kwargs):
        return self.client.post("/callbacks", json=body, **kwargs)

    def snapshot(self) -> dict:
        with self.deps.db.session() as s:
            rows = {m.__name__: s.scalar(select(func.count()).select_from(m))
                    for m in (CallbackRequest, CallbackHandle, CallbackAttempt)}
            statuses = sorted(s.scalars(select(CallbackRequest.status)).all())
        keys = sorted(k.decode() for k in self.deps.redis.keys("ivr:*")
                      if not k.startswith((b"ivr:cb:limit", b"ivr:cb:pow:used")))
        return {"rows": rows, "statuses": statuses, "redis": keys,
                "dials": len(self.cloud.creates())}


def webhook(path: str, params: dict | None = None, *, signed_url: str | None = None,
            signed_params: dict | None = None, token: str = AUTH_TOKEN, headers=None):
    """A POST to `path` whose signature was made for `signed_url`/`signed_params`."""
    sent = dict(CALL if params is None else params)
    signature = sign(signed_url or BASE_URL + path,
                     sent if signed_params is None else signed_params, token)

    def send(ctx: Ctx):
        return ctx.client.post(path, data=sent,
                               headers={"X-Twilio-Signature": signature, **(headers or {})})
    return send


def unsigned(path: str):
    return lambda ctx: ctx.client.post(path, data=CALL)


def raw(data: bytes, content_type: str = "application/json"):
    return lambda ctx: ctx.client.post("/callbacks", data=data, content_type=content_type)


def with_proof(body: dict, **kwargs):
    return lambda ctx: ctx.ask({**body, "altcha": ctx.proof()}, **kwargs)


def tampered_proof(ctx: Ctx) -> str:
    payload = json.loads(base64.b64decode(ctx.proof()))
    payload["challenge"]["parameters"]["cost"] = 1  # cheaper than we asked
    return base64.b64encode(json.dumps(payload).encode()).decode()


def foreign_proof(ctx: Ctx) -> str:
    import altcha

    from tests.support.proof import solved

    other = altcha.create_challenge("PBKDF2/SHA-256", 20, hmac_secret="someone else's key")
    return solved(other.to_dict())


def existing(ctx: Ctx) -> None:
    made = ctx.ask({**FORM, "phone": "+12125550150", "altcha": ctx.proof()}).get_json()
    ctx.made.update(made)


def used_proof(ctx: Ctx) -> None:
    proof = ctx.proof()
    assert ctx.ask({**FORM, "phone": "+12125550151", "altcha": proof}).status_code == 202
    ctx.made["proof"] = proof


def flood(ctx: Ctx) -> None:
    for i in range(3):
        resp = ctx.ask({**FORM, "phone": f"+1212555016{i}", "altcha": ctx.proof()},
                       environ_base={"REMOTE_ADDR": "198.51.100.77"})
        assert resp.status_code == 202, resp.get_json()


def upgrade(signature: str | None):
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return lambda ctx: ctx.client.get("/speech/stream", headers=headers)


@dataclass(frozen=True)
class Hostile:
    name: str
    status: int
    send: Callable[[Ctx], object]
    error: str | None = None
    prepare: Callable[[Ctx], None] | None = None


CASES = [
    # --- forged webhooks: no signature, or one made with another token --------------------
    *[Hostile(f"unsigned {p}", 403, unsigned(p)) for p in (
        "/voice/incoming", "/voice/gather", "/voice/status", "/voice/queue/wait",
        "/voice/hold/agent", "/callbacks/status", "/callbacks/voice/agent",
        "/callbacks/voice/whisper", "/speech/recorded")],
    *[Hostile(f"forged {p}", 403, webhook(p, token="not-our-token")) for p in (
        "/voice/incoming", "/voice/dialed", "/callbacks/voice/customer", "/speech/stream-status")],
    # --- altered: signed, then changed ------------------------------------------------------
    Hostile("caller ID changed after signing", 403, webhook(
        "/voice/incoming", {**CALL, "From": "+19005550000"}, signed_params=CALL)),
    Hostile("parameter added after signing", 403, webhook(
        "/voice/gather", {**CALL, "Digits": "0"}, signed_params=CALL)),
    Hostile("query changed after signing", 403, webhook(
        "/callbacks/status?attempt=2", signed_url=BASE_URL + "/callbacks/status?attempt=1")),
    # --- replayed: a genuine signature sent somewhere it was not made for -------------------
    Hostile("replayed to another endpoint", 403, webhook(
        "/callbacks/voice/agent", signed_url=BASE_URL + "/voice/incoming")),
    Hostile("replayed for another call", 403, webhook(
        "/voice/status", {**CALL, "CallSid": "CA" + "c" * 32}, signed_params=CALL)),
    Hostile("replayed to another host", 403, webhook(
        "/voice/incoming", signed_url="https://old-ivr.example.net/voice/incoming")),
    Hostile("replayed over http", 403, webhook(
        "/voice/incoming", signed_url="http://ivr.example.com/voice/incoming")),
    # --- spoofed forwarding headers ---------------------------------------------------------
    Hostile("X-Forwarded-Host picks the signed host", 403, webhook(
        "/voice/incoming", signed_url="https://evil.example/voice/incoming",
        headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})),
    Hostile("X-Forwarded-Proto picks the signed scheme", 403, webhook(
        "/voice/incoming", signed_url="http://ivr.example.com/voice/incoming",
        headers={"X-Forwarded-Proto": "http"})),
    Hostile("X-Forwarded-For does not buy a new allowance", 429,
            with_proof({**FORM, "phone": "+12125550169"},
                       environ_base={"REMOTE_ADDR": "198.51.100.77"},
                       headers={"X-Forwarded-For": "192.0.2.200"}),
            "rate_limited", prepare=flood),
    # --- media streams ----------------------------------------------------------------------
    Hostile("unsigned stream upgrade", 403, upgrade(None)),
    Hostile("stream upgrade signed for another URL", 403,
            upgrade(sign("wss://ivr.example.com/speech/stream?call=CA1", {}))),
    # --- missing consent --------------------------------------------------------------------
    Hostile("no consent field", 400, lambda c: c.ask({"phone": CUSTOMER}), "consent_required"),
    Hostile("consent false", 400, lambda c: c.ask({**FORM, "consent": False}),
            "consent_required"),
    Hostile("consent as the string true", 400, lambda c: c.ask({**FORM, "consent": "true"}),
            "consent_required"),
    Hostile("consent as 1", 400, lambda c: c.ask({**FORM, "consent": 1}), "consent_required"),
    Hostile("our wording sent back as consent", 400,
            lambda c: c.ask({"phone": CUSTOMER, "consent_text": "I agree"}), "invalid_request"),
    # --- cross-origin posts -----------------------------------------------------------------
    Hostile("post from another site", 403, lambda c: c.ask(FORM, headers={
        "Origin": "https://evil.example"}), "origin_refused"),
    Hostile("post from an opaque origin", 403, lambda c: c.ask(FORM, headers={
        "Origin": "null"}), "origin_refused"),
    Hostile("look-alike of the shop's origin", 403, lambda c: c.ask(FORM, headers={
        "Origin": SHOP + ".evil.example"}), "origin_refused"),
    Hostile("cancel from another site", 403, lambda c: c.client.post(
        f"/callbacks/{c.made['id']}/cancel", json={"token": c.made["token"]},
        headers={"Origin": "https://evil.example"}), "origin_refused", prepare=existing),
    Hostile("a simple cross-site form post", 400, lambda c: c.client.post(
        "/callbacks", data=json.dumps(FORM), content_type="text/plain"), "invalid_request"),
    # --- enumeration ------------------------------------------------------------------------
    Hostile("status without a token", 401, lambda c: c.client.get(
        f"/callbacks/{c.made['id']}"), "token_required", prepare=existing),
    Hostile("status with a guessed token", 403, lambda c: c.client.get(
        f"/callbacks/{c.made['id']}", headers={"X-Callback-Token": "A" * 43}), "bad_token",
        prepare=existing),
    Hostile("status of a guessed id", 403, lambda c: c.client.get(
        "/callbacks/0000000000000000", headers={"X-Callback-Token": "A" * 43}), "bad_token"),
    Hostile("cancel with the token in the URL", 401, lambda c: c.client.delete(
        f"/callbacks/{c.made['id']}?token={c.made['token']}"), "token_required",
        prepare=existing),
    Hostile("cancel with a guessed token", 403, lambda c: c.client.delete(
        f"/callbacks/{c.made['id']}", headers={"X-Callback-Token": "B" * 43}), "bad_token",
        prepare=existing),
    # --- oversized, non-UTF-8, deeply nested, malformed bodies ------------------------------
    Hostile("a 1 MB phone", 413, lambda c: c.ask({**FORM, "phone": "1" * 1_000_000}),
            "too_large"),
    Hostile("a 20 MB preferred_time", 413, lambda c: c.ask(
        {**FORM, "preferred_time": "2" * 20_000_000}), "too_large"),
    *[Hostile(f"{f} one over its limit", 400, lambda c, f=f, n=n: c.ask({**FORM, f: "x" * n}),
              "invalid_request")
      for f, n in (("phone", 33), ("name", 101), ("reason", 501), ("queue", 65),
                   ("altcha", 4097))],
    Hostile("not UTF-8", 400, raw(b'{"phone": "\xff\xfe", "consent": true}'), "invalid_request"),
    Hostile("nested 5000 deep", 400, raw(b"[" * 5000 + b"]" * 5000), "invalid_request"),
    Hostile("a nested field", 400, lambda c: c.ask({**FORM, "name": {"$gt": ""}}),
            "invalid_request"),
    Hostile("a list, not an object", 400, raw(b'[{"phone": "+14155550123"}]'),
            "invalid_request"),
    Hostile("not JSON", 400, raw(b"phone=+14155550123&consent=1"), "invalid_request"),
    Hostile("an empty body", 400, raw(b""), "invalid_request"),
    Hostile("an unknown field", 400, lambda c: c.ask({**FORM, "admin": True}), "invalid_request"),
    # --- proof of work ----------------------------------------------------------------------
    Hostile("no proof of work", 403, lambda c: c.ask(FORM), "proof_required"),
    Hostile("a garbage proof", 403, lambda c: c.ask({**FORM, "altcha": "bm90IGEgcHJvb2Y="}),
            "proof_required"),
    Hostile("a tampered proof", 403, lambda c: c.ask({**FORM, "altcha": tampered_proof(c)}),
            "proof_required"),
    Hostile("a proof made with another key", 403, lambda c: c.ask(
        {**FORM, "altcha": foreign_proof(c)}), "proof_required"),
    Hostile("a proof used once already", 403, lambda c: c.ask(
        {**FORM, "phone": "+12125550152", "altcha": c.made["proof"]}), "proof_required",
        prepare=used_proof),
    # --- numbers we never call ----------------------------------------------------------------
    Hostile("a premium-rate number", 400, with_proof({**FORM, "phone": "+19005551234"}),
            "number_refused"),
    Hostile("our own toll-free number", 400, with_proof({**FORM, "phone": "+18005550100"}),
            "number_refused"),
    Hostile("a short code", 400, with_proof({**FORM, "phone": "911"}), "number_refused"),
    Hostile("a number abroad", 400, with_proof({**FORM, "phone": "+442079460018"}),
            "number_refused"),
    # --- operations -------------------------------------------------------------------------
    Hostile("admin API without a token", 401, lambda c: c.client.get("/admin/agents")),
    Hostile("admin API with the metrics token", 403, lambda c: c.client.get(
        "/admin/agents", headers={"Authorization": f"Bearer {METRICS}"})),
    Hostile("metrics without their token", 401, lambda c: c.client.get("/metrics")),
    Hostile("metrics with the admin token", 401, lambda c: c.client.get(
        "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})),
]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_request_is_refused_and_changes_nothing(callback_app, client, deps,
                                                         twilio_cloud, case):
    ctx = Ctx(client, deps, twilio_cloud)
    if case.prepare:
        case.prepare(ctx)
    before = ctx.snapshot()
    resp = case.send(ctx)
    assert resp.status_code == case.status, resp.get_data(as_text=True)[:300]
    if case.error:
        assert resp.get_json()["error"] == case.error
    assert len(resp.get_data()) < 2000  # nothing sent is echoed back whole
    assert ctx.snapshot() == before
    assert twilio_cloud.creates() == []  # and nothing was ever dialled
