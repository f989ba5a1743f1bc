"""Defined events from definitions.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.definitions import load_definitions
from pipeline.errors import ConfigError

YAML = """
events:
  - name: Clicked Buy
    match: {event: $click, selector: "button#buy", text: "buy*"}
  - name: Viewed Pricing
    match: {event: [$pageview], url: "*/pricing*"}
  - name: Any Card Interaction
    match: {selector: ".card"}
"""


def click(**extra: Any) -> dict[str, Any]:
    return {
        "event": "$click",
        "context": {"page": {"url": "https://x.example/pricing?a=1"}},
        "elements": [
            {"tag": "span"},
            {"tag": "button", "id": "buy", "text": "Buy now"},
            {"tag": "div", "classes": ["card"]},
        ],
        **extra,
    }


def test_events_match_their_definitions(tmp_path: Path) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text(YAML)
    definitions = load_definitions(path)
    assert definitions.defined_events(click()) == ["Clicked Buy", "Any Card Interaction"]
    view = {"event": "$pageview", "context": {"page": {"url": "https://x.example/pricing"}}}
    assert definitions.defined_events(view) == ["Viewed Pricing"]
    other = click(elements=[{"tag": "button", "id": "buy", "text": "Cancel"}])
    assert definitions.defined_events(other) == []


def test_missing_file_means_no_definitions(tmp_path: Path) -> None:
    assert load_definitions(tmp_path / "nope.yaml").defined_events(click()) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events: [{match: {event: x}}]", "needs a name"),
        ("events: [{name: A}]", "needs a `match`"),
        ("events: [{name: A, match: {colour: red}}]", "unknown match key 'colour'"),
        ("events: [{name: A, match: {selector: 'a >'}}]", "'A': selector"),
        ("events: [{name: A, match: {url: 5}}]", "`url` must be a string"),
        ("events: [{name: A, match: {event: x}}, {name: A, match: {event: y}}]", "twice"),
        ("events: {", "not valid YAML"),
        ("- 1", "expected a mapping"),
        (
            "segments: [{name: s, where: {cohort: ghosts}}]",
            "segment 's' uses cohort 'ghosts', which `cohorts:` does not declare",
        ),
    ],
)
def test_bad_definitions_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "definitions.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_definitions(path)
