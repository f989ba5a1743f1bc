"""``python -m bench.collector``: run the collector benchmark (``--help`` for the knobs)."""

from bench.collector.run import main

if __name__ == "__main__":
    raise SystemExit(main())
