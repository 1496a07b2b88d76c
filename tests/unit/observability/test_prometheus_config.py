"""Prometheus config, recording/alerting rules and their unit tests, checked with promtool.

``promtool test rules`` runs the alert unit tests in prometheus/tests/ (each
alert: an input that fires it and one that does not); the checks here make
sure that stays true as alerts are added.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecomstream.launchers.prometheus import (
    PROMETHEUS_JOB,
    TRITON_JOB,
    WORKER_JOB,
    PrometheusServer,
    ScrapeJob,
)
from ecomstream.testing.prometheus import known_metric_names, metric_names

REPO_ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO_ROOT / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning", "info"}

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (make setup)")


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, timeout=120, cwd=REPO_ROOT
    )


def _output(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode(errors="replace")


def _rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += group["rules"]
    return rules


def test_compose_config_is_valid() -> None:
    result = promtool("check", "config", str(CONFIG))
    assert result.returncode == 0, _output(result)
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in _output(result)


def test_rules_are_valid() -> None:
    assert RULE_FILES
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, _output(result)


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, _output(result)


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts - firing == set(), "alerts never shown to fire"
    assert alerts - quiet == set(), "alerts never shown to stay quiet"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_alerts_carry_severity_and_explanations() -> None:
    for rule in _rules():
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_rules_select_only_metrics_that_exist() -> None:
    known = known_metric_names()
    unknown = {
        rule.get("alert") or rule["record"]: sorted(metric_names(rule["expr"]) - known)
        for rule in _rules()
        if metric_names(rule["expr"]) - known
    }
    assert unknown == {}


def test_recording_rule_names_follow_the_level_metric_operation_convention() -> None:
    for rule in _rules():
        if "record" in rule:
            assert rule["record"].count(":") == 2, rule["record"]


def test_compose_config_scrapes_workers_by_dns_and_triton() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {WORKER_JOB, TRITON_JOB, PROMETHEUS_JOB}
    (dns,) = jobs[WORKER_JOB]["dns_sd_configs"]
    assert dns["type"] == "A" and dns["names"] == ["worker"] and dns["port"] == 6066
    assert jobs[TRITON_JOB]["static_configs"][0]["targets"] == ["triton:8002"]
    assert config["rule_files"] == ["rules/*.yml"]


def test_launcher_config_is_valid(tmp_path: Path) -> None:
    """What the test launcher writes passes promtool too (rules loaded by absolute glob)."""
    server = PrometheusServer(
        tmp_path,
        [
            ScrapeJob(WORKER_JOB, ["127.0.0.1:6066", "127.0.0.1:6067"]),
            ScrapeJob(TRITON_JOB, ["127.0.0.1:8002"], scrape_interval="2s"),
        ],
        port=19090,
        rule_files=[str(PROMETHEUS_DIR / "rules" / "*.yml")],
    )
    server.check_config()  # raises with promtool's output
    config = yaml.safe_load(server.config_path.read_text())  # JSON is YAML
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs[PROMETHEUS_JOB]["static_configs"][0]["targets"] == ["127.0.0.1:19090"]
    assert config["global"]["scrape_interval"] == "1s"


def test_exposition_passes_promtool_lint() -> None:
    """Every metric, with samples, in the text format and following Prometheus naming rules.

    Runs in a child process so the test process's registry stays untouched.
    """
    code = (
        "import random, sys\n"
        "from ecomstream import metrics\n"
        "from ecomstream.testing.prometheus import touch_every_metric\n"
        "touch_every_metric(random.Random(7))\n"
        "sys.stdout.buffer.write(metrics.exposition())\n"
    )
    exposition = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=60
    ).stdout
    assert b"ecomstream_events_consumed_total" in exposition
    result = promtool("check", "metrics", stdin=exposition)
    assert result.returncode == 0, _output(result)
