"""The example Grafana dashboard: valid dashboard JSON, and every expression asks only for metrics
(and labels) that the service's /metrics publishes."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "ivr" / "console" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
AGENT_STATES = {"available", "ringing", "on_call", "wrap_up", "offline"}
# Each metric the dashboard may use, with its labels.
METRICS: dict[str, set[str]] = {
    "ivr_queue_waiting": {"queue"},
    "ivr_queue_longest_wait_seconds": {"queue"},
    "ivr_queue_agents": {"queue", "state"},
    "ivr_queue_service_level_today": {"queue"},
    "ivr_queue_answered_today": {"queue"},
    "ivr_queue_abandoned_today": {"queue"},
    "ivr_queue_callbacks": {"queue", "state"},
    "ivr_escapes_today": set(),
    "ivr_queue_estimate_accuracy_today": {"queue"},
    "ivr_webhook_seconds": {"endpoint"},  # a histogram
    "ivr_calls_total": {"flow"},
    "ivr_escapes_total": {"flow", "node"},
    "ivr_webhook_errors_total": {"kind"},
    "ivr_rq_jobs_queued": {"queue"},
}
HISTOGRAMS = {"ivr_webhook_seconds"}
STATE_VALUES = {"ivr_queue_agents": AGENT_STATES, "ivr_queue_callbacks": {"due", "scheduled"}}

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_NAME = re.compile(r"(?<![\w:$.])([A-Za-z_:][\w:]*)(\s*\()?")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_VARIABLE = re.compile(r"\$\{?(\w+)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, keywords or labels)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = _GROUPING.sub(" ", text)
    return {name for name, call in _NAME.findall(text)
            if not call and name.lower() not in KEYWORDS and not re.fullmatch(r"\d\w*", name)}


def grouping_labels(expr: str) -> set[str]:
    """The labels of every by (...) / without (...) / on (...) of an expression."""
    return {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",")
            if label.strip()}


def base_metric(name: str) -> str:
    """ivr_webhook_seconds_bucket -> ivr_webhook_seconds (a histogram's series)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    return name


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return out


def _queries(dashboard: dict) -> list[tuple[dict, dict]]:
    return [(p, t) for p in _panels(dashboard) if p["type"] != "row" for t in p["targets"]]


def test_the_name_parser_finds_metrics_and_only_metrics() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, endpoint) '
            '(rate(ivr_webhook_seconds_bucket{endpoint=~"$endpoint"}[$__rate_interval]))) '
            '/ on (queue) group_left sum(up offset 5m) > bool 1e3')
    assert metric_names(expr) == {"ivr_webhook_seconds_bucket", "up"}
    assert metric_names('sum(ivr_queue_agents{state="on_call", queue=~"a|b"}) * 60') == {
        "ivr_queue_agents"}
    assert grouping_labels(expr) == {"le", "endpoint", "queue"}


def test_is_a_dashboard_with_a_prometheus_datasource_and_a_queue_variable(dashboard) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["title"] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    queue = variables["queue"]
    assert queue["type"] == "query"
    assert queue["datasource"] == DATASOURCE
    assert queue["definition"] == "label_values(ivr_queue_waiting, queue)"
    assert queue["query"]["query"] == "label_values(ivr_queue_waiting, queue)"


def test_panels_have_unique_ids_and_places_that_do_not_overlap(dashboard) -> None:
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))
    for panel in panels:
        pos = panel["gridPos"]
        assert set(pos) == {"x", "y", "w", "h"}, panel["title"]
        assert all(isinstance(v, int) for v in pos.values())
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] > 0 and pos["h"] > 0
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        assert panel["title"]
    for a, b in itertools.combinations(panels, 2):
        pa, pb = a["gridPos"], b["gridPos"]
        apart = (pa["x"] + pa["w"] <= pb["x"] or pb["x"] + pb["w"] <= pa["x"]
                 or pa["y"] + pa["h"] <= pb["y"] or pb["y"] + pb["h"] <= pa["y"])
        assert apart, f"{a['title']!r} overlaps {b['title']!r}"


def test_every_panel_queries_prometheus(dashboard) -> None:
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            assert "targets" not in panel
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']!r} has no queries"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE
            assert target["expr"].strip()
            assert target["expr"].count("(") == target["expr"].count(")")


def test_every_metric_and_label_is_one_the_service_publishes(dashboard) -> None:
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    used: set[str] = set()
    for panel, target in _queries(dashboard):
        expr = target["expr"]
        names = metric_names(expr)
        assert names, f"{panel['title']!r}: no metric in {expr!r}"
        bases = {base_metric(n) for n in names}
        unknown = bases - set(METRICS)
        assert not unknown, f"{panel['title']!r} asks for {sorted(unknown)} in {expr!r}"
        used |= bases
        labels = set().union(*(METRICS[b] for b in bases))
        if bases & HISTOGRAMS:
            labels.add("le")
        assert grouping_labels(expr) <= labels, expr
        for metric, matchers in _SELECTOR.findall(expr):
            for label, op, value in _MATCHER.findall(matchers):
                assert label in METRICS[base_metric(metric)], f"{metric} has no label {label}"
                if label == "state" and op == "=":
                    assert value in STATE_VALUES[metric], expr
        assert set(_VARIABLE.findall(expr)) <= defined | {"__rate_interval", "__interval"}
    assert used == set(METRICS), f"no panel shows {sorted(set(METRICS) - used)}"


def test_webhook_latency_is_a_p99_of_the_histogram(dashboard) -> None:
    p99 = [t["expr"] for _p, t in _queries(dashboard)
           if re.match(r"histogram_quantile\(\s*0\.99\s*,", t["expr"])]
    assert p99
    assert all("rate(ivr_webhook_seconds_bucket[" in e and "le" in grouping_labels(e)
               for e in p99)


def test_every_agent_state_is_shown(dashboard) -> None:
    shown = {value for _p, t in _queries(dashboard)
             for metric, matchers in _SELECTOR.findall(t["expr"]) if metric == "ivr_queue_agents"
             for label, _op, value in _MATCHER.findall(matchers) if label == "state"}
    assert shown == AGENT_STATES
