"""Local processes: ports, spawning with a log file, stopping a whole process group, and finding
every process an environment started.

Every replica and gateway runs as the leader of its own process group (vLLM's engine
workers join its group), so stopping or cleaning up after one kills everything it started,
even when the leader itself was already killed.

The supervisor leads a session of its own, and every process it starts runs in that
session (in a process group of its own), carrying the environment's tag in its environment
(`FLEET_TAG`, inherited by every descendant). So what an environment runs is found by asking
the kernel (`tagged`), not from remembered PIDs: the tagged processes, plus every process in
their sessions. The session catches what the tag misses: a process that renames itself
(vLLM's `VLLM::EngineCore`, the router's `vllm::router`) overwrites the memory its
environment is read from. A vLLM server whose entrypoint and supervisor were both killed is
still found, and a PID reused by an unrelated process is never taken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Collection, Mapping
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"
FLEET_TAG = "GPUFLEET_LOCAL_FLEET"  # environment variable naming the environment a process belongs to


def free_port(avoid: Collection[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks; ports in `avoid` are skipped)."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise OSError("no free port on 127.0.0.1 after 64 tries")


def spawn(command: list[str], log_path: Path, env: Mapping[str, str], *, new_session: bool = False) -> subprocess.Popen:
    """Start `command` as a new process group (in this session, or leading a new one), stdout and stderr
    appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=dict(env),
                                start_new_session=new_session, process_group=None if new_session else 0)


def alive(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
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


def tagged(tag: str) -> list[psutil.Process]:
    """Every running process (but this one) whose environment carries `FLEET_TAG=tag`, and every process
    in a session such a process leads or led (module docstring); never one of this command's session."""
    running, marked = [], set()
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):  # gone, or another user's
            if process.pid != os.getpid() and process.status() != psutil.STATUS_ZOMBIE:
                running.append((process, os.getsid(process.pid)))
                if process.environ().get(FLEET_TAG) == tag:
                    marked.add(process.pid)
    # A session whose leader is tagged, or gone (the supervisor was killed) while a tagged member remains.
    alive_pids = {p.pid for p, _ in running}
    sessions = {sid for p, sid in running if p.pid in marked and (sid in marked or sid not in alive_pids)}
    sessions.discard(os.getsid(0))
    return [p for p, sid in running if p.pid in marked or sid in sessions]


def kill_tagged(tag: str, timeout_s: float = 10.0) -> list[int]:
    """SIGKILL every tagged process and its process group; wait (up to `timeout_s`) until they are gone.

    Returns the pids killed. Zombies of this process's own children are reaped by waiting on them.
    """
    processes = tagged(tag)
    pids = {p.pid for p in processes}
    for process in processes:
        with contextlib.suppress(psutil.Error, OSError):
            group = os.getpgid(process.pid)
            # A group led by one of ours, or whose leader is gone (vLLM after its entrypoint was killed);
            # never this command's own group.
            if group != os.getpgrp() and (group in pids or not psutil.pid_exists(group)):
                kill_group(group)
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=timeout_s)
    return sorted(pids)
