"""Grafana dashboards and provisioning, checked offline.

The structure is validated against a JSON schema generated from Grafana's own
TypeScript types (npm @grafana/schema, see grafana_schema.py); the PromQL is
checked for names here and evaluated against a real Prometheus in
tests/integration/test_prometheus.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ecomstream.testing.prometheus import (
    DASHBOARDS_DIR,
    dashboard_variables,
    iter_panels,
    known_metric_names,
    load_dashboards,
    metric_names,
    panel_queries,
    render_query,
    variable_queries,
)
from tests.unit.observability import grafana_schema

REPO_ROOT = Path(__file__).resolve().parents[3]
PROVISIONING = REPO_ROOT / "grafana" / "provisioning"
DASHBOARDS = load_dashboards()
EXPECTED = {"pipeline-health", "model-serving", "business-insight"}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return grafana_schema.load_bundle()


def _errors(schema: dict[str, Any], instance: object) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message[:300]}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def test_the_three_dashboards_exist() -> None:
    assert set(DASHBOARDS) == EXPECTED


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_matches_the_grafana_schema(bundle: dict[str, Any], name: str) -> None:
    assert _errors(bundle["dashboard"], DASHBOARDS[name]) == []


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_options_match_their_plugin_schema(bundle: dict[str, Any], name: str) -> None:
    problems = []
    for panel in iter_panels(DASHBOARDS[name]):
        if panel["type"] == "row":
            continue
        plugin = bundle["panels"].get(panel["type"])
        if plugin is None:
            problems.append(f"{panel['title']}: no schema for panel type {panel['type']!r}")
            continue
        title = panel["title"]
        options = panel.get("options", {})
        problems += [f"{title}: options/{e}" for e in _errors(plugin["options"], options)]
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None and "fieldConfig" in plugin:
            problems += [f"{title}: custom/{e}" for e in _errors(plugin["fieldConfig"], custom)]
    assert problems == []


def test_a_typo_is_caught_by_the_schema(bundle: dict[str, Any]) -> None:
    """The generated schema is strict: Grafana would silently ignore a misspelt key."""
    broken = json.loads(json.dumps(DASHBOARDS["pipeline-health"]))
    broken["panels"][1]["gridPos"]["width"] = 6
    broken["refersh"] = "5s"
    errors = _errors(bundle["dashboard"], broken)
    assert any("width" in e for e in errors) and any("refersh" in e for e in errors)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_schema_version_is_one_the_pinned_grafana_knows(bundle: dict[str, Any], name: str) -> None:
    assert DASHBOARDS[name]["schemaVersion"] <= bundle["latestSchemaVersion"]


def test_uids_and_titles_are_unique() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    assert all(8 <= len(uid) <= 40 for uid in uids)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_layout_ids_unique_and_panels_do_not_overlap(name: str) -> None:
    panels = list(iter_panels(DASHBOARDS[name]))
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_query_goes_through_the_datasource_variable(name: str) -> None:
    dashboard = DASHBOARDS[name]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in iter_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
            assert target["expr"].strip(), panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF, variable["name"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_queries_select_only_metrics_that_exist(name: str) -> None:
    known = known_metric_names()
    unknown = {}
    for query in panel_queries(name, DASHBOARDS[name]):
        missing = metric_names(query.expr) - known
        if missing:
            unknown[str(query)] = sorted(missing)
    for variable in variable_queries(name, DASHBOARDS[name]):
        missing = metric_names(variable.selector) - known
        if missing:
            unknown[f"${variable.name}"] = sorted(missing)
    assert unknown == {}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_queries_use_only_defined_variables(name: str) -> None:
    values = dashboard_variables(DASHBOARDS[name])
    for query in panel_queries(name, DASHBOARDS[name]):
        rendered = render_query(query.expr, values)  # KeyError names an undefined variable
        assert "$" not in rendered, query


def test_metric_name_scan() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (agent, le) (rate(ecomstream_processing_seconds_bucket"
        '{job="w", instance=~"$instance"}[$__rate_interval]))) / 1e6'
        " + on (agent) group_left max(label:x:y offset 5m)"
    )
    assert metric_names(expr) == {"ecomstream_processing_seconds_bucket", "label:x:y"}


# --------------------------------------------------------------------------- provisioning


def test_datasource_provisioning_defines_the_default_prometheus() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090"  # the compose service


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards" / "ecomstream.yml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    mounts = {}  # host path -> container path
    for volume in compose["services"]["grafana"]["volumes"]:
        host, container = volume.split(":")[:2]
        mounts[host] = container
    host = mounts.get("./" + str(DASHBOARDS_DIR.relative_to(REPO_ROOT)))
    assert host == provider["options"]["path"]
    assert mounts.get("./grafana/provisioning") == "/etc/grafana/provisioning"
