"""SQL lives in ``sql/*.sql``; this loads it by name.

Values go in as bound parameters (``?``/``$name``) wherever DuckDB allows them. DDL such as
``CREATE VIEW`` cannot take parameters, so those files use ``{{name}}`` placeholders that are
filled only with properly quoted string literals, never spliced raw.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from pipeline.resources import resource_dir

__all__ = ["load_sql", "render_sql", "sql_list_literal", "sql_string_literal"]

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


def sql_list_literal(values: Sequence[str]) -> str:
    """``values`` as a DuckDB list of string literals: ``['a', 'b']``."""
    return "[" + ", ".join(sql_string_literal(v) for v in values) + "]"


def render_sql(name: str, **literals: str | Sequence[str]) -> str:
    """Load ``sql/<name>.sql`` and fill each ``{{key}}`` with ``literals[key]`` as a literal
    (a string, or a list of strings for a sequence)."""
    text = load_sql(name)
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(literals))
    if missing:
        raise KeyError(f"sql/{name}.sql needs values for {', '.join(missing)}")

    def literal(match: re.Match[str]) -> str:
        value = literals[match.group(1)]
        return sql_string_literal(value) if isinstance(value, str) else sql_list_literal(value)

    return _PLACEHOLDER.sub(literal, text)
