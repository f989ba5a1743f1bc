"""SQL lives in ``sql/*.sql``; this loads it by name.

Values go in as bound parameters (``?``/``$name``) wherever DuckDB allows them. DDL such as
``CREATE VIEW`` cannot take parameters, so those files use ``{{name}}`` placeholders that are
filled only with properly quoted string literals, never spliced raw.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache

from pipeline.resources import resource_dir

__all__ = [
    "IDENTIFIER",
    "load_sql",
    "render_sql",
    "sql_identifier",
    "sql_list_literal",
    "sql_string_literal",
]

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
_IDENTIFIER_PLACEHOLDER = re.compile(r"\{\{\s*ident:([a-z_][a-z0-9_]*)\s*\}\}")
#: Names autocap itself gives to views it creates (funnel_<name>...): plain, lower case.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


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


def sql_list_literal(values: Iterable[str]) -> str:
    """``values`` as a DuckDB list of string literals: ``['a', 'b']``."""
    return "[" + ", ".join(sql_string_literal(v) for v in values) + "]"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted identifier; only plain lower-case names are accepted."""
    if not IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain lower-case name (a-z, 0-9, _)")
    return f'"{name}"'


def render_sql(
    name: str, identifiers: Mapping[str, str] | None = None, **literals: str | Iterable[str]
) -> str:
    """Load ``sql/<name>.sql`` and fill each ``{{key}}`` with ``literals[key]`` as a literal
    (a string, or a list of strings for a sequence), and each ``{{ident:key}}`` with
    ``identifiers[key]`` as a checked, quoted identifier."""
    text = load_sql(name)
    wanted = set(_IDENTIFIER_PLACEHOLDER.findall(text))
    missing_ids = sorted(wanted - set(identifiers or {}))
    if missing_ids:
        raise KeyError(f"sql/{name}.sql needs names for {', '.join(missing_ids)}")
    text = _IDENTIFIER_PLACEHOLDER.sub(
        lambda m: sql_identifier((identifiers or {})[m.group(1)]), text
    )
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(literals))
    if missing:
        raise KeyError(f"sql/{name}.sql needs values for {', '.join(missing)}")

    def literal(match: re.Match[str]) -> str:
        value = literals[match.group(1)]
        return sql_string_literal(value) if isinstance(value, str) else sql_list_literal(value)

    return _PLACEHOLDER.sub(literal, text)
