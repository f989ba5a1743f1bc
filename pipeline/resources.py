"""Locate the project's data folders (``sql/``, ``schemas/``) in a checkout or a wheel."""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The ``sql`` or ``schemas`` folder: beside the package in a checkout, inside it in a wheel."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"autocap data folder {name!r} not found; is the install complete?")
