"""The alert rules: valid for Prometheus, each fired by series of its own, documented, and the
same in the prod overlay's PrometheusRule.

``promtool`` (Debian's ``prometheus`` package; ``.ci/run`` installs it, and under CI its
absence fails rather than skips) checks the rule files and
runs tests/alerts/alerts_test.yaml. The metric names and labels the rules use are checked against
a live server's ``/metrics`` in tests/test_dashboard.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from test_k8s import KUSTOMIZE, REPO

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
ALERTS_TEST = REPO / "tests" / "alerts" / "alerts_test.yaml"
COMPONENT = REPO / "k8s" / "components" / "alerts"
RULE_SCHEMA = COMPONENT / "prometheusrule.schema.json"
RUNBOOK = REPO / "docs" / "observability.md"


def groups() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return loaded


def alerts() -> list[dict[str, Any]]:
    return [r for g in groups() for r in g["rules"] if "alert" in r]


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture(scope="module")
def prometheus_rule() -> dict[str, Any]:
    """The PrometheusRule of the rendered prod overlay."""
    if not KUSTOMIZE.exists():
        message = f"{KUSTOMIZE} is missing: `make k8s-check` installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    text = subprocess.run(
        [str(KUSTOMIZE), "build", "k8s/overlays/prod"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    [rule] = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "PrometheusRule"]
    found: dict[str, Any] = rule
    return found


class TestPromtool:
    def test_the_rules_pass_promtool_check(self, promtool: str) -> None:
        checked = run(promtool, "check", "rules", str(ALERTS))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"SUCCESS: {sum(len(g['rules']) for g in groups())} rules found" in checked.stdout

    def test_each_alert_fires_on_its_fixture(self, promtool: str) -> None:
        tested = run(promtool, "test", "rules", str(ALERTS_TEST))
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert "SUCCESS" in tested.stdout

    def test_every_alert_has_a_fixture_that_fires_it(self) -> None:
        fired = {
            case["alertname"]
            for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
            for case in test.get("alert_rule_test", [])
            if case["exp_alerts"]
        }
        assert fired == {a["alert"] for a in alerts()}

    def test_a_broken_rule_fails_the_fixture(self, promtool: str, tmp_path: Path) -> None:
        """The fixtures bite: with the error threshold raised they no longer pass."""
        text = ALERTS.read_text()
        assert "            > 0.05\n" in text
        (tmp_path / "alerts.yaml").write_text(text.replace("> 0.05\n", "> 0.07\n"))
        fixture = ALERTS_TEST.read_text().replace(
            "../../deploy/prometheus/alerts.yaml", str(tmp_path / "alerts.yaml")
        )
        (tmp_path / "alerts_test.yaml").write_text(fixture)
        tested = run(promtool, "test", "rules", str(tmp_path / "alerts_test.yaml"))
        assert tested.returncode != 0
        assert "TiergateErrorRatioHigh" in tested.stdout + tested.stderr


class TestRunbook:
    def test_every_alert_has_summary_description_and_runbook(self) -> None:
        doc = RUNBOOK.read_text()
        anchors = {_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", doc, flags=re.M)}
        for alert in alerts():
            annotations = alert["annotations"]
            assert {"summary", "description", "runbook_url"} <= set(annotations), alert["alert"]
            page, _, anchor = annotations["runbook_url"].partition("#")
            assert page == "docs/observability.md"
            assert anchor == alert["alert"].lower()
            assert anchor in anchors, alert["alert"]
            assert alert["labels"]["severity"] in ("warning", "critical")


def _anchor(heading: str) -> str:
    """A Markdown heading's anchor, as the usual renderers make it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


class TestPrometheusRule:
    def test_the_prod_overlay_carries_the_same_rules(self, prometheus_rule: dict[str, Any]) -> None:
        assert prometheus_rule["spec"]["groups"] == groups()
        assert prometheus_rule["metadata"]["namespace"] == "tiergate"

    def test_it_matches_the_custom_resource_schema(self, prometheus_rule: dict[str, Any]) -> None:
        schema = json.loads(RULE_SCHEMA.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(prometheus_rule)

    def test_the_schema_bites(self, prometheus_rule: dict[str, Any]) -> None:
        validator = jsonschema.Draft202012Validator(json.loads(RULE_SCHEMA.read_text()))
        broken = json.loads(json.dumps(prometheus_rule))
        broken["spec"]["groups"][1]["rules"][0]["for"] = "five minutes"
        assert not validator.is_valid(broken)
        broken = json.loads(json.dumps(prometheus_rule))
        broken["spec"]["groups"][1]["rules"][0]["annotation"] = {}
        assert not validator.is_valid(broken)

    def test_its_rules_pass_promtool_check(
        self, promtool: str, prometheus_rule: dict[str, Any], tmp_path: Path
    ) -> None:
        rules = tmp_path / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": prometheus_rule["spec"]["groups"]}))
        checked = run(promtool, "check", "rules", str(rules))
        assert checked.returncode == 0, checked.stdout + checked.stderr
