"""CSS selectors over an autocaptured element chain. Pure, shared by stream and batch.

Supported: ``tag``, ``#id``, ``.class``, ``[attr]``, ``[attr=value]`` (value quoted or
bare), ``:nth-child(n)``, ``:nth-of-type(n)``, ``*``, the descendant (space) and child
(``>``) combinators, and selector lists (``a, b``). The chain runs from the event's target
(index 0) up to the root. A selector matches an event when it matches any element of the
chain in its context, so a click on an icon inside ``button.buy`` matches ``button.buy``,
as in Heap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = ["Selector", "SelectorError", "matches", "parse_selector"]


class SelectorError(ValueError):
    """A selector autocap cannot parse; the message points at the problem."""


@dataclass(frozen=True)
class _Compound:
    tag: str | None = None
    ids: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str | None], ...] = ()
    nth_child: int | None = None
    nth_of_type: int | None = None


@dataclass(frozen=True)
class Selector:
    """A parsed selector list: alternatives, each compounds joined by combinators."""

    text: str
    # Each alternative: [(compound, combinator to the next one on its left)], rightmost first.
    alternatives: tuple[tuple[tuple[_Compound, str], ...], ...] = field(default=())


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<comb>>)
    | (?P<tag>[A-Za-z][A-Za-z0-9-]*|\*)
    | \#(?P<id>[A-Za-z0-9_-]+)
    | \.(?P<cls>[A-Za-z0-9_-]+)
    | \[\s*(?P<attr>[A-Za-z_:][A-Za-z0-9_:.-]*)\s*
        (?:=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\]\s]+))\s*)?\]
    | :(?P<pseudo>nth-child|nth-of-type)\(\s*(?P<n>\d+)\s*\)
    )""",
    re.VERBOSE,
)


def _parse_alternative(text: str) -> tuple[tuple[_Compound, str], ...]:
    parts: list[tuple[_Compound, str]] = []
    current: dict[str, Any] = {}
    combinator = " "
    pos = 0
    pending_space = False

    def flush() -> None:
        nonlocal current
        if not current:
            raise SelectorError(f"selector {text!r}: a combinator needs an element on each side")
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in current.items()
        }
        parts.append((_Compound(**fields), combinator))
        current = {}

    while pos < len(text):
        if text[pos].isspace():
            pending_space = bool(current)
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise SelectorError(f"selector {text!r}: cannot read {text[pos : pos + 12]!r}")
        pos = match.end()
        if match["comb"]:
            flush()
            combinator, pending_space = ">", False
            continue
        if pending_space:  # whitespace between two compounds: descendant
            flush()
            combinator, pending_space = " ", False
        if match["tag"]:
            if "tag" in current:
                raise SelectorError(f"selector {text!r}: two tag names in one element")
            current["tag"] = None if match["tag"] == "*" else match["tag"].lower()
        elif match["id"]:
            current.setdefault("ids", []).append(match["id"])
        elif match["cls"]:
            current.setdefault("classes", []).append(match["cls"])
        elif match["attr"]:
            value = (
                match["dq"]
                if match["dq"] is not None
                else (match["sq"] if match["sq"] is not None else match["bare"])
            )
            current.setdefault("attributes", []).append((match["attr"].lower(), value))
        else:
            key = "nth_child" if match["pseudo"] == "nth-child" else "nth_of_type"
            current[key] = int(match["n"])
    flush()
    # Rightmost first; each compound carries the combinator joining it to its left
    # neighbour (the leftmost one's is unused).
    return tuple(reversed(parts))


@lru_cache(maxsize=4096)
def parse_selector(text: str) -> Selector:
    """Parse a selector list, or raise ``SelectorError`` saying where it went wrong."""
    if not text.strip():
        raise SelectorError("empty selector")
    alternatives = tuple(_parse_alternative(alt.strip()) for alt in text.split(","))
    return Selector(text, alternatives)


_NAMED_ATTRIBUTES = {
    "id": "id",
    "href": "href",
    "name": "name",
    "type": "type",
    "role": "role",
    "aria-label": "aria_label",
}


def _attribute(element: Mapping[str, Any], name: str) -> str | None:
    if name == "class":
        classes = element.get("classes") or []
        return " ".join(classes) if classes else None
    if name in _NAMED_ATTRIBUTES and element.get(_NAMED_ATTRIBUTES[name]) is not None:
        return str(element[_NAMED_ATTRIBUTES[name]])
    value = (element.get("attributes") or {}).get(name)
    return None if value is None else str(value)


def _matches_compound(compound: _Compound, element: Mapping[str, Any]) -> bool:
    if compound.tag is not None and str(element.get("tag", "")).lower() != compound.tag:
        return False
    if any(element.get("id") != wanted for wanted in compound.ids):
        return False
    classes = element.get("classes") or ()
    if any(c not in classes for c in compound.classes):
        return False
    for name, value in compound.attributes:
        actual = _attribute(element, name)
        if actual is None or (value is not None and actual != value):
            return False
    if compound.nth_child is not None and element.get("nth_child") != compound.nth_child:
        return False
    return compound.nth_of_type is None or element.get("nth_of_type") == compound.nth_of_type


def _matches_from(
    alternative: tuple[tuple[_Compound, str], ...], chain: Sequence[Any], start: int
) -> bool:
    """Does ``alternative`` match with its rightmost compound on ``chain[start]``?"""
    compound, combinator = alternative[0]
    if not _matches_compound(compound, chain[start]):
        return False
    rest = alternative[1:]
    if not rest:
        return True
    if combinator == ">":
        return start + 1 < len(chain) and _matches_from(rest, chain, start + 1)
    return any(_matches_from(rest, chain, i) for i in range(start + 1, len(chain)))


def matches(selector: Selector | str, chain: Sequence[Mapping[str, Any]] | None) -> bool:
    """Whether any element of ``chain`` (target first) matches ``selector`` in context."""
    if not chain:
        return False
    parsed = parse_selector(selector) if isinstance(selector, str) else selector
    return any(
        _matches_from(alt, chain, i) for alt in parsed.alternatives for i in range(len(chain))
    )
