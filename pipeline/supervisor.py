"""Supervised child processes for ``autocap up``.

Each child runs in its own session (so a terminal's Ctrl-C reaches only the supervisor, which
then stops children in reverse start order: collector first, broker last) and asks the
kernel to SIGTERM it if the supervisor dies, so no child is ever orphaned. A child that dies
is reported and restarted with backoff; a critical one, or one that dies too often, brings
everything down with one clear message.
"""

from __future__ import annotations

import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ChildFailed
from pipeline.processes import die_with_parent, stop_process

__all__ = ["ChildSpec", "Supervisor"]


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child: its name, command line and environment."""

    name: str
    argv: list[str]
    env: dict[str, str]
    critical: bool = False  # if it dies, nothing else can work: stop everything


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    deaths: deque[float] = field(default_factory=deque)
    restart_at: float | None = None


def last_line(path: Path) -> str:
    """The last non-empty line of a log file (what a user needs to see first)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 8192))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    return next((ln for ln in reversed(lines) if ln), "")


class Supervisor:
    """Starts, watches, restarts and stops a set of child processes."""

    def __init__(
        self,
        logs_dir: Path,
        report: Callable[[str], None],
        *,
        max_restarts: int = 5,
        window_s: float = 60.0,
        grace_s: float = 10.0,
    ) -> None:
        self.logs_dir = logs_dir
        self.report = report
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.grace_s = grace_s
        self._children: list[_Child] = []

    def log_path(self, name: str) -> Path:
        """Where a child's stdout and stderr go."""
        return self.logs_dir / f"{name}.log"

    def start(self, spec: ChildSpec) -> None:
        """Start a new child now."""
        child = _Child(spec)
        self._children.append(child)
        self._spawn(child)

    def _spawn(self, child: _Child) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(child.spec.name).open("ab") as log:
            child.proc = subprocess.Popen(
                child.spec.argv,
                env=child.spec.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        child.restart_at = None

    def pids(self) -> dict[str, int]:
        """PID of every running child, by name."""
        return {
            c.spec.name: c.proc.pid
            for c in self._children
            if c.proc is not None and c.proc.poll() is None
        }

    def check(self, now: float | None = None) -> None:
        """Reap dead children: restart them when due, or raise ``ChildFailed``."""
        now = time.monotonic() if now is None else now
        for child in self._children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self.report(f"restarting {child.spec.name}")
                    self._spawn(child)
                continue
            if child.proc is None or (code := child.proc.poll()) is None:
                continue
            name, log = child.spec.name, self.log_path(child.spec.name)
            detail = f"{name} exited with code {code} (log: {log}): {last_line(log)}"
            if child.spec.critical:
                raise ChildFailed(f"{detail}; autocap cannot run without it")
            child.deaths.append(now)
            while child.deaths and now - child.deaths[0] > self.window_s:
                child.deaths.popleft()
            if len(child.deaths) > self.max_restarts:
                raise ChildFailed(
                    f"{detail}; it died {len(child.deaths)} times in {self.window_s:g}s, giving up"
                )
            delay = min(10.0, 0.5 * 2 ** (len(child.deaths) - 1))
            self.report(f"{detail}; restarting in {delay:g}s")
            child.restart_at = now + delay

    def stop_all(self) -> None:
        """Stop every child, last started first; SIGKILL any that outlive the grace period."""
        for child in reversed(self._children):
            if child.proc is not None:
                stop_process(child.proc, self.grace_s)
            child.restart_at = None
