"""CSS selectors over element chains (target first)."""

from __future__ import annotations

import pytest

from pipeline.selectors import SelectorError, matches, parse_selector

# A click on an icon inside a "Buy" button, inside a pricing card, inside the page body.
CHAIN = [
    {"tag": "svg", "classes": ["icon"], "nth_child": 1, "nth_of_type": 1},
    {
        "tag": "button",
        "id": "buy",
        "classes": ["btn", "primary"],
        "text": "Buy now",
        "type": "submit",
        "nth_child": 2,
        "nth_of_type": 1,
        "attributes": {"data-plan": "pro", "data-test": "buy button"},
    },
    {"tag": "div", "classes": ["card", "pricing"], "nth_child": 3, "nth_of_type": 2},
    {"tag": "section", "id": "plans", "nth_child": 1, "nth_of_type": 1},
    {"tag": "body"},
]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("button", True),
        ("#buy", True),
        (".btn.primary", True),
        ("button.btn#buy", True),
        ("a", False),
        (".secondary", False),
        ("[data-plan]", True),
        ("[data-plan=pro]", True),
        ('[data-plan="enterprise"]', False),
        ("[data-test='buy button']", True),
        ("[type=submit]", True),
        ("button:nth-child(2)", True),
        ("button:nth-child(1)", False),
        ("div:nth-of-type(2) > button", True),
        (".pricing > button", True),
        (".pricing > svg", False),  # svg is a grandchild of .pricing
        (".pricing svg", True),  # ...but a descendant
        ("#plans .card > #buy", True),
        ("#plans > .card > #buy > svg.icon", True),
        ("body > section", True),
        ("section > body", False),
        ("* > .icon", True),
        ("a, .pricing > button", True),
        ("a, .nope", False),
    ],
)
def test_selector_matching(selector: str, expected: bool) -> None:
    assert matches(selector, CHAIN) is expected


def test_empty_chain_matches_nothing() -> None:
    assert not matches("button", []) and not matches("*", None)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "  ",
        "button >",
        "> a",
        "a >> b",
        "a[",
        "a:hover",
        "div span%",
        "button.btn button#buy div div div span$",
    ],
)
def test_bad_selectors_are_refused_clearly(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(bad)
