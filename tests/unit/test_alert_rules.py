"""The alert rules, scrape configs and runbook: promtool checks and unit tests, and the
promises every alert keeps (severity, summary, runbook section, a firing and a silent test)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
PROM = ROOT / "ops" / "prometheus"
RUNBOOK = ROOT / "ops" / "RUNBOOK.md"

#: The alerts issue 11 asks for, by name (more may exist).
REQUIRED = {
    "AutocapCollectorDown",
    "AutocapCollector5xxRate",
    "AutocapRejectionRateSpike",
    "AutocapSpoolGrowing",
    "AutocapKafkaUnreachable",
    "AutocapConsumerLagGrowing",
    "AutocapFreshnessSLOBreached",
    "AutocapDeadLetterSpike",
    "AutocapSinkFailing",
    "AutocapMaterializerStale",
    "AutocapWorkerRebalanceStorm",
}


def _promtool(*args: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: ./ops/bootstrap.sh --test installs Debian `prometheus`")
    done = subprocess.run([promtool, *args], cwd=PROM, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{done.stdout}{done.stderr}"


def _alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the ``##`` headings of a markdown file."""
    return {
        re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^##+ (.+)$", markdown, flags=re.M)
    }


def test_promtool_check_rules() -> None:
    _promtool("check", "rules", "alerts.yml")


def test_promtool_check_config_for_up_and_scaled_out() -> None:
    _promtool("check", "config", "prometheus.yml", "prometheus-scaled.yml")


def test_promtool_test_rules() -> None:
    _promtool("test", "rules", "alerts_test.yml")


def test_every_required_alert_exists() -> None:
    assert REQUIRED - {a["alert"] for a in _alerts()} == set()


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    anchors = _anchors(RUNBOOK.read_text())
    for alert in _alerts():
        name = alert["alert"]
        assert alert.get("labels", {}).get("severity") in {"critical", "warning"}, name
        notes = alert.get("annotations", {})
        assert notes.get("summary") and notes.get("description"), name
        url = notes.get("runbook_url", "")
        assert url == f"ops/RUNBOOK.md#{name.lower()}", name
        assert name.lower() in anchors, f"ops/RUNBOOK.md has no '## {name}' section"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fires == set(), "alerts without a test where they fire"
    assert names - silent == set(), "alerts without a test where they stay silent"


def test_alert_expressions_only_use_metrics_autocap_exports() -> None:
    # A typo in a metric name makes an alert that can never fire; promtool cannot see it.
    source = "\n".join(p.read_text() for p in (ROOT / "pipeline").rglob("*.py"))
    exported = set(re.findall(r'"(autocap_[a-z_]+)"', source))
    suffixes = ("_total", "_bucket", "_count", "_sum")
    for alert in _alerts():
        for used in set(re.findall(r"autocap_[a-z_]+", alert["expr"])):
            base = next((used[: -len(s)] for s in suffixes if used.endswith(s)), used)
            assert base in exported, f"{alert['alert']} uses {used}, which nothing exports"
