"""The systemd units start real autocap roles, and docs/scaling.md names every role."""

from __future__ import annotations

import configparser
from pathlib import Path

from pipeline.cli import _COMMANDS

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("collector", "worker", "sink", "materialize", "health")


def test_every_role_has_a_systemd_unit_running_that_role() -> None:
    for role in ROLES:
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read(ROOT / "ops" / "systemd" / f"autocap-{role}.service")
        service = unit["Service"]
        command = service["ExecStart"].split()
        assert command[0].endswith("/autocap") and command[1] == role
        assert command[1] in _COMMANDS, f"{role} is not an autocap command"
        assert service["EnvironmentFile"] == "/etc/autocap/autocap.env"
        assert service["Restart"] == "always"
        # The roles exit within 10 s of SIGTERM (pipeline.roles); systemd waits longer.
        assert int(service["TimeoutStopSec"]) > 10
        assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_example_settings_are_real_settings_and_scaling_names_every_role() -> None:
    from pipeline.settings import setting_docs

    known = {row[1] for row in setting_docs()}
    example = (ROOT / "ops" / "systemd" / "autocap.env.example").read_text()
    names = [line.split("=")[0] for line in example.splitlines() if line and line[0] != "#"]
    assert names and set(names) <= known, set(names) - known
    scaling = (ROOT / "docs" / "scaling.md").read_text()
    for role in ROLES:
        assert role in scaling
