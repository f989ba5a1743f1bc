"""The supervisor with real child processes (short-lived Python programs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from pipeline.errors import ChildFailed
from pipeline.supervisor import ChildSpec, Supervisor
from tests.conftest import wait_until

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
CRASHER = [sys.executable, "-c", "import sys; print('boom: bad config', flush=True); sys.exit(3)"]


def make(tmp_path: Path, messages: list[str], **kw: float) -> Supervisor:
    return Supervisor(tmp_path / "logs", messages.append, grace_s=2, **kw)  # type: ignore[arg-type]


def test_dead_child_is_reported_and_restarted(tmp_path: Path) -> None:
    messages: list[str] = []
    sup = make(tmp_path, messages)
    sup.start(ChildSpec("worker", SLEEPER, dict(os.environ)))
    first = sup.pids()["worker"]
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        sup.check()
        return sup.pids().get("worker") not in (None, first)

    wait_until(restarted, 5, what="restart")
    assert any("worker exited with code -9" in m for m in messages)
    second = sup.pids()["worker"]
    sup.stop_all()
    assert sup.pids() == {}
    assert not psutil.pid_exists(second)


def test_crash_loop_gives_up_with_the_last_log_line(tmp_path: Path) -> None:
    sup = make(tmp_path, [], max_restarts=2, window_s=60)
    sup.start(ChildSpec("sink", CRASHER, dict(os.environ)))
    with pytest.raises(ChildFailed, match=r"sink exited with code 3 .*boom: bad config.*giving up"):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sup.check()
            time.sleep(0.05)
    sup.stop_all()


def test_critical_child_stops_everything(tmp_path: Path) -> None:
    sup = make(tmp_path, [])
    sup.start(ChildSpec("broker", CRASHER, dict(os.environ), critical=True))
    time.sleep(0.5)
    with pytest.raises(ChildFailed, match="cannot run without it"):
        wait_until(lambda: sup.check(), 5, what="broker death")
    sup.stop_all()


def test_stop_all_kills_children_that_ignore_sigterm(tmp_path: Path) -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(60)",
    ]
    sup = make(tmp_path, [])
    sup.start(ChildSpec("stubborn", stubborn, dict(os.environ)))
    pid = sup.pids()["stubborn"]
    wait_until(lambda: "ready" in (tmp_path / "logs" / "stubborn.log").read_text(), 5)
    started = time.monotonic()
    sup.stop_all()
    assert not psutil.pid_exists(pid)
    assert time.monotonic() - started < 5


def test_children_die_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    # A supervisor in its own process; SIGKILL it and its child must not survive.
    program = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from pipeline.supervisor import ChildSpec, Supervisor
        sup = Supervisor(Path({str(tmp_path)!r}) / "logs", print)
        sup.start(ChildSpec("child", {SLEEPER!r}, dict(os.environ)))
        print(sup.pids()["child"], flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert psutil.pid_exists(child_pid)
    parent.kill()
    parent.wait()
    wait_until(
        lambda: (
            not psutil.pid_exists(child_pid)
            or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
        ),
        5,
        what="the orphaned child to die",
    )


def test_a_role_that_does_not_stop_after_sigterm_exits_after_its_grace() -> None:
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from pipeline.roles import _stop_on_signals\n"
        "stop = _stop_on_signals('autocap stuck', grace_s=0.5)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    time.sleep(0.05)  # ignores `stop`, like a client stuck on a dead broker\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 3
    assert time.monotonic() - started < 5
    assert proc.stderr is not None
    assert "autocap stuck: did not stop within 0.5s; exiting" in proc.stderr.read()
