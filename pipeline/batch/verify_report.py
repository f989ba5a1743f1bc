"""Printing ``autocap verify``'s report: tables for people, JSON for scripts and alerts."""

from __future__ import annotations

import sys

import orjson
from rich.console import Console
from rich.table import Table

from pipeline.batch.verify import VerifyReport

__all__ = ["print_report"]


def print_report(report: VerifyReport, fmt: str, strict: bool = False) -> None:
    """Print ``report`` as ``table`` or ``json`` on stdout."""
    if fmt == "json":
        sys.stdout.write(orjson.dumps(report.to_json(strict)).decode() + "\n")
        return
    console = Console()
    explained = ", ".join(f"{n} {why}" for why, n in report.devices_explained.items()) or "none"
    console.print(
        f"{report.events:,} events on {report.devices:,} devices ({report.late_events:,} marked"
        f" late by the stream); devices that arrived out of order: {explained}; sessions"
        f" compared if ended before {report.sessions_closed_before or '-'}",
        highlight=False,
    )
    totals = Table("check", "compared", "skipped (open)", "differences", "explained", title="")
    for check in report.checks.values():
        totals.add_row(
            check.name,
            f"{check.compared:,}",
            f"{check.skipped:,}",
            ", ".join(f"{n} {k}" for k, n in check.differences.items()) or "0",
            ", ".join(f"{n} {k}" for k, n in check.expected.items()) or "0",
        )
    console.print(totals)
    examples = Table("check", "kind", "example", title="examples of differences")
    for check in report.checks.values():
        for kind, shown in check.examples.items():
            for example in shown:
                examples.add_row(check.name, kind, orjson.dumps(example).decode())
    if examples.row_count:
        console.print(examples)
    verdict = "[red]DIFFER[/]" if report.failed(strict) else "[green]EQUAL[/]"
    console.print(f"{verdict}: {report.verdict(strict)}", highlight=False)
