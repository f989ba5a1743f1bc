"""``python -m pipeline`` runs the autocap CLI (used by ``autocap up`` for its children)."""

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
