"""SQL lives in ``sql/*.sql``; this loads it by name.

Values go in as bound parameters (``?``/``$name``) wherever DuckDB allows them. DDL such as
``CREATE VIEW`` cannot take parameters, so those files use ``{{name}}`` placeholders that are
filled only with properly quoted string literals, never spliced raw.
"""

from __future__ import annotations

import re
from functools import cache

from pipeline.resources import resource_dir

__all__ = ["load_sql", "render_sql", "sql_string_literal"]

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


@cache
def load_sql(name: str) -> str:
    """The text of ``sql/<name>.sql`` (``name`` may contain ``/`` for sub-folders)."""
    if not re.fullmatch(r"[a-z0-9_/]+", name) or ".." in name:
        raise ValueError(f"bad SQL file name {name!r}")
    return (resource_dir("sql") / f"{name}.sql").read_text(encoding="utf-8")


def sql_string_literal(value: str) -> str:
    """``value`` as a DuckDB string literal: quotes doubled, NUL refused."""
    if "\0" in value:
        raise ValueError("a SQL literal cannot contain NUL")
    return "'" + value.replace("'", "''") + "'"


def render_sql(name: str, **literals: str) -> str:
    """Load ``sql/<name>.sql`` and fill each ``{{key}}`` with ``literals[key]`` as a literal."""
    text = load_sql(name)
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(literals))
    if missing:
        raise KeyError(f"sql/{name}.sql needs values for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: sql_string_literal(literals[m.group(1)]), text)
