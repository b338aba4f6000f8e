"""Nodes that decide without the caller: business hours, branches, and jumps to another flow."""

from __future__ import annotations

import datetime as dt
import re

from ivr.core.callstate import CallState
from ivr.core.flows.schema import BranchNode, Condition, FlowFile, GotoFlowNode, HoursNode, Node
from ivr.core.hours import HoursState, state_at


def next_node(flows: FlowFile, st: CallState, node: Node, now: dt.datetime) -> str | None:
    """The node an instant node leads to (updating flow and language on a jump); else None."""
    match node:
        case HoursNode():
            hours = flows.hours.get(node.hours)
            if hours is None:
                return node.closed
            state = state_at(hours, now)
            if state is HoursState.OPEN:
                return node.open
            if state is HoursState.HOLIDAY and node.holiday:
                return node.holiday
            return node.closed
        case BranchNode():
            for rule in node.rules:
                if holds(rule.when, st):
                    return rule.goto
            return node.otherwise
        case GotoFlowNode():
            flow = flows.flows[node.flow]
            st.flow = node.flow
            if flow.language:
                st.language = flow.language
            return flow.start
    return None


def holds(cond: Condition, st: CallState) -> bool:
    """Whether a branch condition is true for this call."""
    if cond.var is not None:
        value = st.vars.get(cond.var)
        if cond.present is not None:
            return (value is not None and value != "") == cond.present
        if value is None:
            return False
        if cond.equals is not None:
            return value == cond.equals
        if cond.one_of is not None:
            return value in cond.one_of
        return re.fullmatch(cond.matches or "", value) is not None
    if cond.returning_caller is not None:
        return st.returning == cond.returning_caller
    if cond.caller_id is not None:
        return st.caller in cond.caller_id
    return bool(cond.caller_prefix) and st.caller.startswith(cond.caller_prefix or "")
