"""Locate the project's data folders (``sql/``, ``schemas/``, the built snippet) in a
checkout or a wheel."""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Where a folder lives in a checkout when not at the top (the wheel has all in ``_data``).
_CHECKOUT_PATHS = {"js": Path("collectors", "js", "dist")}


def resource_dir(name: str) -> Path:
    """The ``sql``, ``schemas`` or ``js`` (built autocap.js) folder: beside the package in a
    checkout, inside it in a wheel."""
    checkout = _PACKAGE_DIR.parent / _CHECKOUT_PATHS.get(name, Path(name))
    for candidate in (_PACKAGE_DIR / "_data" / name, checkout):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"autocap data folder {name!r} not found; is the install complete?")
