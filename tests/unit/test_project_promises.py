"""The README's promises that a test can hold it to."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.settings import setting_docs

ROOT = Path(__file__).parents[2]


def _shell_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    test_command = next(b for b in _shell_blocks(readme) if "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_first_command_runs_the_demo() -> None:
    first = _shell_blocks((ROOT / "README.md").read_text())[0]
    assert first == "./ops/bootstrap.sh && .venv/bin/autocap up --demo"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [env for _, env, _, _ in setting_docs() if f"`{env}`" not in readme]
    assert missing == []
