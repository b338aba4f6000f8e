"""Agent HTTP API: the admin roster under /admin/agents and agents' own presence at /agents/me.

Admin calls carry `Authorization: Bearer <IVR_ADMIN_TOKEN>`; with no admin token configured
the admin API is closed (403) rather than open. Agents authenticate with the token issued
when they were created (only its hash is stored). Errors are JSON `{"error": message}`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import redis
from flask import Blueprint, Flask, current_app, g, jsonify, request

from ivr.core.flows.lint_languages import used_languages
from ivr.hold import webhooks
from ivr.infra import agents as ag
from ivr.infra.agents.fields import (
    AgentConflict,
    AgentError,
    AgentNotFound,
    InvalidAgent,
    check_status,
)
from ivr.infra.db import Database
from ivr.infra.security import admin_refusal, bearer_token
from ivr.infra.services import services_of

log = logging.getLogger(__name__)

admin_bp = Blueprint("hold_agents_admin", __name__, url_prefix="/admin/agents")
agent_bp = Blueprint("hold_agents_self", __name__, url_prefix="/agents/me")

ADDRESS_KEYS = ("phone", "sip", "client")
FIELDS = {"name", "kind", "address", "queues", "languages", "wrap_up_seconds", "active",
          *ADDRESS_KEYS}
# Busy and wrap-up follow the agent's calls; by hand an agent only comes and goes.
SELF_STATUSES = (ag.AgentStatus.AVAILABLE, ag.AgentStatus.OFFLINE)


def init_app(app: Flask) -> None:
    """Register the agent blueprints and rebuild presence if Redis lost it."""
    app.register_blueprint(admin_bp)
    app.register_blueprint(agent_bp)
    webhooks.init_app(app)  # the hold queue's own Twilio webhooks (keys, agent calls)
    services = services_of(app)
    try:
        restored = ag.restore_presence(services.db, services.redis, services.now())
        if restored:
            log.info("agent presence restored from the database", extra={"agents": restored})
    except redis.RedisError as exc:
        log.warning("agent presence not restored: Redis unavailable", extra={"error": str(exc)})


def _db() -> Database:
    return services_of(current_app).db


def _redis() -> redis.Redis:
    return services_of(current_app).redis


def _now():
    return services_of(current_app).now()


def _error(status: int, message: str, **headers: str):
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers)
    return response


@admin_bp.before_request
def _require_admin():
    refusal = admin_refusal(current_app.config, bearer_token())
    if refusal is not None:
        return _error(refusal.status, refusal.message, **refusal.headers)
    return None


def _agent_auth(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = bearer_token()
        if token is None:
            return _error(401, "send 'Authorization: Bearer <your agent token>'",
                          **{"WWW-Authenticate": 'Bearer realm="ivr-agent"'})
        agent = ag.agent_by_token(_db(), token)
        if agent is None:
            return _error(403, "that agent token is not valid (ask an admin for a new one)")
        g.agent = agent
        return view(*args, **kwargs)

    return wrapper


def _register_errors(bp: Blueprint) -> None:
    @bp.errorhandler(InvalidAgent)
    def _invalid(exc):
        return _error(400, str(exc))

    @bp.errorhandler(AgentNotFound)
    def _missing(exc):
        return _error(404, str(exc))

    @bp.errorhandler(AgentConflict)
    def _conflict(exc):
        return _error(409, str(exc))

    @bp.errorhandler(AgentError)
    def _other(exc):
        return _error(400, str(exc))

    @bp.errorhandler(redis.RedisError)
    def _redis_down(exc):
        log.warning("agent presence store unavailable", extra={"error": str(exc)})
        return _error(503, "agent presence is unavailable right now (Redis); try again shortly")


_register_errors(admin_bp)
_register_errors(agent_bp)

# Agent ids are SQL integers: one past that range names no agent (rather than overflowing).
MAX_AGENT_ID = 2**31 - 1


@admin_bp.url_value_preprocessor
def _known_agent_id(_endpoint, values) -> None:
    agent_id = (values or {}).get("agent_id")
    if agent_id is not None and not 0 < agent_id <= MAX_AGENT_ID:
        raise AgentNotFound(f"no agent with id {agent_id}")


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidAgent("send a JSON object with Content-Type: application/json")
    return data


def _agent_fields(data: dict, *, creating: bool) -> dict:
    unknown = sorted(set(data) - FIELDS - {"status"})
    if unknown:
        raise InvalidAgent(f"unknown field {unknown[0]!r}; fields are: {', '.join(sorted(FIELDS))}")
    fields: dict = {}
    given = [k for k in ADDRESS_KEYS if k in data]
    if len(given) > 1:
        raise InvalidAgent("give one of phone, sip or client, not several")
    if given:
        fields["kind"], fields["address"] = given[0], data[given[0]]
    elif "address" in data or "kind" in data:
        fields["kind"], fields["address"] = data.get("kind"), data.get("address")
    if creating and ("address" not in fields or "kind" not in fields or not fields["kind"]):
        raise InvalidAgent('give how to reach the agent: "phone": "+14155550123", '
                           '"sip": "sip:ann@pbx.example.com" or "client": "ann"')
    for key, kinds, label in (
        ("name", (str,), "a string"),
        ("address", (str,), "a string"),
        ("queues", (list, str), 'a list such as ["support"]'),
        ("languages", (list, str), 'a list of flow language codes such as ["hi", "en"]'),
        ("wrap_up_seconds", (int,), "a whole number of seconds"),
        ("active", (bool,), "true or false"),
    ):
        if key in fields or key in data:
            value = fields.get(key, data.get(key))
            if value is None and not creating and key != "address":
                continue
            if not isinstance(value, kinds) or (key == "wrap_up_seconds" and value is True):
                raise InvalidAgent(f"{key} must be {label}")
            fields[key] = value
    if creating and "name" not in fields:
        raise InvalidAgent("name is required")
    if creating and "queues" not in fields:
        raise InvalidAgent('queues is required, e.g. ["support"]')
    if "languages" in fields:
        # Checked against the languages the flows speak: a code no flow uses matches no caller.
        fields["known_languages"] = list(
            used_languages(services_of(current_app).flows.current().file))
    return fields


def _detail(agent_id: int) -> dict:
    db, now = _db(), _now()
    agent = ag.get_agent(db, agent_id)
    out = {**agent.to_dict(), "presence": ag.get_presence(db, _redis(), agent_id, now).to_dict()}
    out["history"] = [
        {"from": e.from_status, "to": e.to_status, "at": e.at.isoformat(), "reason": e.reason}
        for e in ag.presence_history(db, agent_id)
    ]
    return out


@admin_bp.get("")
def list_agents():
    """The roster with live presence; `?queue=name` filters and adds that queue's counts."""
    queue = request.args.get("queue") or None
    now = _now()
    entries = ag.list_agents(_db(), _redis(), now, queue=queue)
    body: dict = {"agents": [e.to_dict() for e in entries]}
    if queue:
        body["staffed"] = ag.staffed_count(_redis(), queue, now)
        body["available"] = ag.available_count(_redis(), queue, now)
    return jsonify(body)


@admin_bp.post("")
def create_agent():
    """Add an agent; the response holds its self-service token, shown only this once."""
    data = _body()
    fields = _agent_fields(data, creating=True)
    status = check_status(data.get("status") or "offline")  # before anything is created
    agent, token = ag.add_agent(_db(), _redis(), **fields, now=_now())
    if status is not ag.AgentStatus.OFFLINE:
        ag.set_presence(_db(), _redis(), agent.id, status, reason="admin", now=_now())
    return jsonify(agent=_detail(agent.id), token=token), 201


@admin_bp.get("/<int:agent_id>")
def show_agent(agent_id: int):
    """One agent with presence and recent presence history."""
    return jsonify(agent=_detail(agent_id))


@admin_bp.patch("/<int:agent_id>")
def update_agent(agent_id: int):
    """Change any of name, phone/sip/client, queues, languages, wrap_up_seconds, active."""
    data = _body()
    if "status" in data:
        raise InvalidAgent("set presence with PUT /admin/agents/<id>/presence")
    ag.update_agent(_db(), _redis(), agent_id, **_agent_fields(data, creating=False),
                    now=_now())
    return jsonify(agent=_detail(agent_id))


@admin_bp.delete("/<int:agent_id>")
def delete_agent(agent_id: int):
    """Remove an agent and its history (PATCH active=false keeps the history)."""
    ag.remove_agent(_db(), _redis(), agent_id)
    return "", 204


@admin_bp.route("/<int:agent_id>/presence", methods=["PUT", "POST"])
def set_agent_presence(agent_id: int):
    """Set presence: {"status": "available" | "busy" | "wrap_up" | "offline"}."""
    data = _body()
    reason = data.get("reason") or "admin"
    if not isinstance(reason, str):
        raise InvalidAgent("reason must be a string")
    state = ag.set_presence(_db(), _redis(), agent_id, data.get("status"), reason=reason,
                            now=_now())
    return jsonify(presence=state.to_dict())


@admin_bp.post("/<int:agent_id>/token")
def new_agent_token(agent_id: int):
    """Issue a new self-service token (the old one stops working)."""
    return jsonify(token=ag.rotate_token(_db(), agent_id))


@agent_bp.get("")
@_agent_auth
def whoami():
    """The calling agent's roster entry and presence."""
    return jsonify(agent=_detail(g.agent.id))


@agent_bp.route("/presence", methods=["PUT", "POST"])
@_agent_auth
def set_own_presence():
    """An agent signs in or out: {"status": "available" | "offline"}."""
    status = _body().get("status")
    if status not in [s.value for s in SELF_STATUSES]:
        raise InvalidAgent(
            f"status must be available or offline (got {status!r}); "
            "busy and wrap-up follow your calls"
        )
    state = ag.set_presence(_db(), _redis(), g.agent.id, status, reason="agent", now=_now())
    return jsonify(presence=state.to_dict())
