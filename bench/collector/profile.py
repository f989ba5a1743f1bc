"""Where the collector spends its CPU: py-spy samples, summed per function and per package.

py-spy (``pip install py-spy``) attaches to the running collector and samples it 100 times a
second, pausing it for each sample so that every stack is consistent (unpaused samples mix
frames from different moments). It records only threads on the CPU, so the shares below are
shares of the collector's CPU time, not of wall time.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

__all__ = ["hotspots", "py_spy"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")
_PACKAGE = re.compile(r"site-packages/(?P<name>[^/]+)")
_OURS = ("collectors", "pipeline")
#: The start-up chain every sample passes through; not where request time goes.
_ENTRY = ("__main__.py", "cli.py", "roles.py", "server.py")
_OUTSIDE = "(no autocap frame: event loop, uvicorn, starlette, aiokafka)"
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<name>[^/]+?)(?:\.py)?(?:/|$)")


def _binary() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
    if found is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    return found


@contextlib.contextmanager
def py_spy(pid: int, output: Path, rate: int = 100) -> Iterator[None]:
    """Sample process ``pid`` while the block runs; collapsed stacks are written to ``output``."""
    command = [_binary(), "record", "--pid", str(pid), "--rate", str(rate)]
    command += ["--full-filenames", "--format", "raw", "--output", str(output)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attaching takes a moment; samples before the load starts are idle anyway
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError("py-spy did not stop") from None
        if not output.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")


def _area(path: str) -> str:
    """The package a source file belongs to (``aiokafka``, ``stdlib:asyncio``, ``collectors``)."""
    if match := _PACKAGE.search(path):
        return match["name"].removesuffix(".py")
    if match := _STDLIB.search(path):
        return "stdlib:" + match["name"]
    parts = Path(path).parts
    for anchor in _OURS:
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) : -1]) or anchor
    return path


def _is_ours(path: str) -> bool:
    return _area(path).startswith(_OURS) and Path(path).name not in _ENTRY


def _nearest_ours(frames: list[tuple[str, str]]) -> str:
    """The innermost frame of autocap's own code (past start-up) in a stack."""
    for func, path in reversed(frames):
        if _is_ours(path):
            return f"{func} ({_short(path)})"
    return _OUTSIDE


def _frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) for each frame of one collapsed stack, outermost first."""
    frames = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame)
        frames.append((match["func"], match["file"]) if match else (frame, "?"))
    return frames


def hotspots(raw: Path, top: int = 15) -> str:
    """A text summary: self and inclusive CPU share of the top functions, and per package."""
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    nearest: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), _frames(stack)
        total += count
        own[frames[-1]] += count
        by_area[_area(frames[-1][1])] += count
        nearest[_nearest_ours(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "py-spy recorded no samples"
    lines = [f"{total} samples; self% incl%  function (file)"]
    for (func, path), count in own.most_common(top):
        share, whole = count / total, inclusive[(func, path)] / total
        lines.append(f"  {share:6.1%} {whole:6.1%}  {func} ({_short(path)})")
    lines.append("by nearest autocap function (its own time plus the libraries it calls):")
    lines += [f"  {c / total:6.1%}  {name}" for name, c in nearest.most_common(top)]
    areas = ", ".join(f"{area} {count / total:.0%}" for area, count in by_area.most_common(top))
    lines.append(f"self time by package: {areas}")
    return "\n".join(lines)


def _short(path: str) -> str:
    """The path from the package root on, so lines stay readable."""
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
