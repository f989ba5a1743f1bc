"""Cohort definitions: what parses, and errors that name the cohort and the bad key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.definitions import load_definitions
from pipeline.errors import ConfigError

EXAMPLE = """
cohorts:
  - name: engaged_trialists
    where:
      all:
        - property: {plan: {eq: trial}}
        - performed: {event: Created Dashboard, at_least: 2, within: 7d}
        - not_performed: {event: Upgraded, within: 30d}
        - first_performed: {event: Signed Up, within: 14d}
        - any:
            - stopped: {event: Read Docs, window: 14d}
            - restarted: {event: Read Docs, window: 14d}
        - sequence: {steps: [Viewed Pricing, Requested Demo], within: 3d}
        - regularly: {event: Created Dashboard, at_least: 1, every: 7d, periods: 4}
  - name: active_accounts
    of: account
    where:
      any:
        - users_performed: {event: Created Dashboard, at_least_users: 3, within: 14d}
        - users_active_share: {at_least: 0.4, within: 7d}
        - property: {employee_band: {in: ["201-1000", "1001-5000"]}}
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "definitions.yaml"
    path.write_text(text)
    return load_definitions(path)


def test_the_documented_example_parses(tmp_path: Path) -> None:
    definitions = load_definitions(_write(tmp_path, EXAMPLE))
    trialists, accounts = definitions.cohorts
    assert (trialists.of, accounts.of) == ("person", "account")
    kinds = [leaf.kind for leaf in trialists.where.leaves()]
    assert kinds == [
        "property", "performed", "not_performed", "first_performed", "stopped", "restarted",
        "sequence", "regularly",
    ]  # fmt: skip
    regularly = trialists.where.leaves()[-1]
    assert (regularly.within, regularly.periods) == (timedelta(days=7), 4)
    assert accounts.where.children[1].count == 0.4


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "definitions.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{performed: {event: A, within: 7d, times: 2}}", "unknown key 'times' in `performed`"),
        ("{performed: {event: A}}", "`performed` needs `within`"),
        ("{performed: {event: A, within: soon}}", "bad within 'soon'"),
        ("{performed: {event: A, within: 1d, at_least: 1, exactly: 2}}", "one of at_least"),
        ("{performed: {event: A, within: 1d, at_least: -1}}", "`at_least` must be a whole"),
        ("{sequence: {steps: [A], within: 1d}}", "2 or more events"),
        ("{property: {plan: {like: x}}}", "unknown operator 'like' for `plan`"),
        ("{users_performed: {event: A, within: 1d}}", "`users_performed` is not for person"),
        ("{did: {event: A}}", "unknown criterion 'did'"),
        ("{all: []}", "`all` needs a list of criteria"),
        ("{regularly: {event: A, every: 1d, periods: 0}}", "`periods` must be at least 1"),
    ],
)
def test_errors_name_the_cohort_and_the_key(tmp_path: Path, where: str, message: str) -> None:
    with pytest.raises(ConfigError, match="cohort 'c'") as caught:
        _load(tmp_path, f"cohorts:\n  - name: c\n    where: {where}\n")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cohorts:\n  - name: Bad-Name\n    where: {property: {a: {eq: 1}}}\n", "lower-case"),
        ("cohorts:\n  - name: c\n    of: team\n    where: {property: {a: {eq: 1}}}\n", "`of`"),
        ("cohorts:\n  - name: c\n", "needs `where`"),
        ("cohorts:\n  - name: c\n    where: {property: {a: {eq: 1}}}\n    when: 1\n", "'when'"),
        (
            "cohorts:\n  - name: c\n    of: account\n    where:"
            " {users_active_share: {at_least: 2, within: 1d}}\n",
            "share between 0 and 1",
        ),
        (
            "cohorts:\n  - name: c\n    where: {property: {a: {eq: 1}}}\n"
            "  - name: c\n    where: {property: {a: {eq: 1}}}\n",
            "defined twice",
        ),
    ],
)
def test_cohort_level_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="cohort") as caught:
        _load(tmp_path, text)
    assert message in str(caught.value)
