"""An analyst in a loop: ``python -m tests.analyst_loop WAREHOUSE OUT STOPFILE``.

Opens ``warehouse.duckdb`` read-only over and over (a new connection each time, as a BI
tool or ``duckdb -readonly`` would), queries the events, sessions and defined events, and
counts every error until STOPFILE exists; then writes ``{"queries": n, "errors": [...]}``
to OUT.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb
import orjson

_QUERIES = (
    "SELECT count(*), count(DISTINCT event_id) FROM events",
    "SELECT person_id, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
    "SELECT count(*) FROM sessions",
    "SELECT count(*) FROM identities",
)


def main(warehouse: Path, out: Path, stopfile: Path) -> None:
    queries, errors = 0, []
    while not stopfile.exists():
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
            try:
                for sql in _QUERIES:
                    con.execute(sql).fetchall()
                    queries += 1
            finally:
                con.close()
        except duckdb.Error as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)
    out.write_bytes(orjson.dumps({"queries": queries, "errors": errors[:20]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
