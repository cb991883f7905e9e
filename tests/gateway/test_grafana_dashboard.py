"""deploy/grafana/atelier.json queries only metrics, and labels, that the apps really export."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO, auth

DASHBOARD = REPO / "deploy" / "grafana" / "atelier.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan"}
SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def metric_names(expr: str) -> set[str]:
    """Series names an expression reads: identifiers that are not functions, keywords or labels."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = GROUPING.sub(" ", bare)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", bare):
        if match.group(2) is None and match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def dashboard_queries(dashboard: dict) -> list[str]:
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            metric, label = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query).groups()
            exprs.append(f"sum by ({label}) ({metric})")
    return exprs


@pytest.fixture(scope="module")
def exported(gateway, keys) -> dict[str, set[str]]:
    """Sample name -> label names, from the gateway's /metrics after a few kinds of request."""
    gateway.get("/healthz")
    gateway.get("/v1/jobs", headers=auth(keys["read"]))
    gateway.get("/v1/selection/models", headers=auth(keys["read"]))  # forwarded: the selection service counts too
    gateway.get("/v1/jobs")  # 401
    gateway.get("/v1/jobs/nosuchjob", headers=auth(keys["read"]))  # 404
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(gateway.get("/metrics").text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def test_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 6
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("request rate", "errors by status", "p50", "p99"):
        assert topic in titles
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_every_query_reads_exported_metrics_and_labels(exported):
    assert "atelier_http_requests_total" in exported  # the export itself worked
    for expr in dashboard_queries(json.loads(DASHBOARD.read_text())):
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        missing = names - set(exported)
        assert not missing, f"{expr!r} reads {missing}, which /metrics does not export"
        labels = set().union(*(exported[name] for name in names))
        for metric, matchers in SELECTOR.findall(expr):
            assert set(MATCHER.findall(matchers)) <= exported[metric], f"unknown label in {expr!r}"
        for grouping in GROUPING.findall(expr):
            assert {label.strip() for label in grouping.split(",")} <= labels, f"unknown label in {expr!r}"


def test_the_parser_finds_metric_names():
    """The check above is only as good as this: a typo must show up as an unknown name."""
    assert metric_names('histogram_quantile(0.99, sum by (le, service) (rate(atelier_x_bucket{a="b"}[5m])))') == {
        "atelier_x_bucket"}
    assert metric_names("sum(rate(a_total[1m])) / clamp_min(sum(rate(b_total[1m])), 1e-9)") == {"a_total", "b_total"}
    assert metric_names('topk(10, sum without (route) (atelier_typo_total{route!="x"}))') == {"atelier_typo_total"}
