"""Understanding the caller at a node: the operator escape, and which menu option they chose."""

from __future__ import annotations

from ivr.core.callstate import CallState
from ivr.core.engine.types import Event, Input, InputKind
from ivr.core.flows.schema import CollectNode, FlowFile, MenuNode, Node, phrases_for
from speech.matcher import MatchResult, match_choice

# The choice key speech recognition uses for the operator phrases.
OPERATOR_KEY = "operator"


def operator_phrases(flows: FlowFile, language: str) -> list[str]:
    """The operator escape's spoken phrases in `language` (else the default language's)."""
    op = flows.defaults.operator
    if op is None or not op.enabled:
        return []
    return phrases_for(op.phrases, language) or phrases_for(op.phrases, flows.defaults.language)


def menu_choices(flows: FlowFile, node: MenuNode, language: str) -> dict[str, list[str]]:
    """What a recogniser listens for at a menu: phrases by digit, plus key 'operator'."""
    choices = {o.digit: phrases_for(o.say, language) for o in node.options}
    choices[OPERATOR_KEY] = operator_phrases(flows, language)
    return choices


def is_operator_digit(flows: FlowFile, digits: str) -> bool:
    """True when `digits` is the operator escape key (outside number entry)."""
    op = flows.defaults.operator
    return bool(op and op.enabled and digits == op.digit)


def is_escape(flows: FlowFile, node: Node, given: Input, language: str) -> bool:
    """True when the caller asked for a person at `node`, by key or by voice."""
    op = flows.defaults.operator
    if op is None or not op.enabled:
        return False
    if given.kind is InputKind.DIGITS:
        if isinstance(node, CollectNode):
            # In number entry a 0 is data: the escape there is the collect key (star).
            return op.collect_digit in given.digits
        menu_uses_it = isinstance(node, MenuNode) and any(o.digit == op.digit
                                                          for o in node.options)
        return given.digits == op.digit and not menu_uses_it
    if given.kind is InputKind.SPEECH:
        if given.choice is not None:
            # An unsure operator is asked about like any other choice (match_menu).
            return given.choice == OPERATOR_KEY and not given.needs_confirmation
        if isinstance(node, MenuNode):
            choices = menu_choices(flows, node, language)
        else:
            choices = {OPERATOR_KEY: operator_phrases(flows, language)}
        result = match_choice(given.text, choices)
        return result.key == OPERATOR_KEY and not result.needs_confirmation
    return False


def match_menu(flows: FlowFile, node: MenuNode, language: str,
               given: Input) -> MatchResult | None:
    """The option a spoken (or recognised) answer chose at a menu, or None."""
    if given.choice is not None:
        # The recogniser already matched with its word confidences: do not match its
        # transcript again. "" (heard no option) or a key this menu lacks is invalid; an
        # unsure operator (is_escape took a sure one) is confirmed like an option.
        unsure_operator = (given.choice == OPERATOR_KEY and given.needs_confirmation
                           and bool(operator_phrases(flows, language)))
        if not unsure_operator and not any(o.digit == given.choice for o in node.options):
            return None
        return MatchResult(given.choice, given.text, given.confidence or 1.0,
                           given.needs_confirmation)
    if not given.text:
        return None
    return match_choice(given.text, menu_choices(flows, node, language))


def input_event(st: CallState, given: Input) -> Event | None:
    """The journey event for what the caller gave at their node: keys, or words heard."""
    if given.kind is InputKind.DIGITS:
        return Event("digits", flow=st.flow, node=st.node, digits=given.digits)
    if given.kind is InputKind.SPEECH:
        detail = {"choice": given.choice} if given.choice else {}
        if given.decision_ms is not None:
            detail["decision_ms"] = given.decision_ms
        return Event("speech", flow=st.flow, node=st.node, speech_text=given.text,
                     confidence=given.confidence, detail=detail or None)
    return None
