"""Process plumbing shared by the broker and the supervisor: ports and child lifetimes."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import subprocess
from pathlib import Path

from pipeline.errors import PortInUse

__all__ = ["die_with_parent", "ensure_port_free", "free_port", "fsync_path", "stop_process"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for children: the kernel sends SIGTERM when the parent dies.

    This is what guarantees no orphans even when the parent is killed with SIGKILL and
    gets no chance to stop its children itself.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux/glibc: fall back to the parent's own shutdown
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(host: str, port: int, what: str, setting: str) -> None:
    """Raise ``PortInUse`` naming the role and the setting to change if ``port`` is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(
                    f"{what} cannot listen on {host}:{port}: the port is in use"
                    f" (set {setting} to another port)"
                ) from None
            raise PortInUse(f"{what} cannot listen on {host}:{port}: {exc.strerror}") from None


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> int:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a rename is durable only once its directory is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
