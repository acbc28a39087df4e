"""Start peer processes so that none of them outlives the test session.

Every process is started in its own process group (so helpers it forks die with it), with
the kernel told to kill it when the test process dies (``PR_SET_PDEATHSIG``, which covers a
``kill -9`` of pytest), and is registered here so an ``atexit`` hook stops whatever a
fixture finalizer did not.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Callable, Dict, List, Mapping, Optional, Sequence, Set

_PR_SET_PDEATHSIG = 1
_running: List[subprocess.Popen[bytes]] = []
_lock = threading.Lock()
_ports_given: Set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel picks it) and that this
    session has not handed out before.

    The kernel may pick a port again once its probe socket is closed, before the first
    taker has bound it: two replicas given one port would both pass a readiness check
    answered by whichever bound it, and the second would be gone.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        with _lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port


def _child_setup() -> None:
    """Runs in the child before exec: own process group, die with the parent."""
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Process:
    """A started peer: its Popen, and the file its stdout and stderr go to."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40, width: int = 400) -> str:
        """The last lines the process wrote (each cut to ``width``), for a failure message."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(line[:width] for line in text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        stop(self.popen, timeout)


def start(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[Path] = None,
) -> Process:
    """Start ``argv`` with output to ``log_path``; the process is stopped at exit at the latest.

    Call it from the main thread: the kernel's parent-death signal fires when the *thread*
    that forked exits, not only the process.
    """
    log_file: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - kept open by the child
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd is not None else None,
            preexec_fn=_child_setup,
        )
    finally:
        log_file.close()
    with _lock:
        _running.append(popen)
    return Process(name, popen, log_path)


def ids(pid: int) -> Dict[str, List[str]]:
    """Who a process runs as: ``Uid`` and ``Gid`` (real, effective, saved, filesystem) and
    its supplementary ``Groups``, from ``/proc``."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return {line.split(":")[0]: line.split()[1:] for line in status.splitlines()
            if line.startswith(("Uid:", "Gid:", "Groups:"))}


def children(pid: int) -> List[int]:
    """The processes ``pid`` started (from any of its threads)."""
    found: List[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def stop(popen: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``timeout`` seconds, and reap it."""
    if popen.poll() is None:
        _signal_group(popen, signal.SIGTERM)
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(popen, signal.SIGKILL)
            popen.wait(timeout)
    # The leader is gone; helpers it left in its group go too.
    _signal_group(popen, signal.SIGKILL)
    with _lock:
        if popen in _running:
            _running.remove(popen)


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


@atexit.register
def stop_all() -> None:
    """Stop every process still registered (the fixtures' finalizers normally did)."""
    with _lock:
        left = list(_running)
    for popen in reversed(left):
        stop(popen, timeout=5.0)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    process: Optional[Process] = None,
    interval: float = 0.1,
) -> None:
    """Poll ``check`` until it is true; fail with the process's last log lines if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if process is not None and not process.alive():
            raise RuntimeError(
                f"{process.name} exited with code {process.popen.returncode} before {what}; "
                f"its last log lines ({process.log_path}):\n{process.log_tail()}"
            )
        if time.monotonic() > deadline:
            tail = f"; its last log lines:\n{process.log_tail()}" if process is not None else ""
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s{tail}")
        time.sleep(interval)


def env_with(extra: Dict[str, str]) -> Dict[str, str]:
    """The current environment plus ``extra``."""
    env = dict(os.environ)
    env.update(extra)
    return env
