"""Local processes: ports, spawning with a log file, stopping a whole process group.

Every replica and gateway runs as the leader of its own process group (vLLM's engine
workers join its group), so stopping or cleaning up after one kills everything it started,
even when the leader itself was already killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Collection, Mapping
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port(avoid: Collection[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks; ports in `avoid` are skipped)."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise OSError("no free port on 127.0.0.1 after 64 tries")


def spawn(command: list[str], log_path: Path, env: Mapping[str, str]) -> subprocess.Popen:
    """Start `command` as a new process group, stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(env), start_new_session=True)


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies of our own children are reaped by Popen.poll)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to every process of the group led by `pgid` (gone already: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def kill_group(pgid: int) -> None:
    signal_group(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group led by `pgid` is still running."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_line(pid: int) -> str:
    """The process's command line ('' when it is gone or unreadable); used to recognise our own processes."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
