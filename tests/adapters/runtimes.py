"""Each adapter runs in its real runtime server, in a virtualenv of its own
(``tests.testbed.python.venv``). The repository root goes on ``PYTHONPATH`` so every runtime
imports this checkout's core.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Dict, List, Mapping, Optional, Sequence

from tests.testbed import procs
from tests.testbed.netns import Host

REPO = Path(__file__).resolve().parents[2]

def requirements(adapter: Path) -> List[str]:
    """The requirement lines of an adapter's requirements.txt."""
    lines = (adapter / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@dataclass
class Server:
    name: str
    url: str
    process: procs.Process
    #: The network host it runs on (reach it from inside), or None: this machine's loopback.
    host: Optional[Host] = None

    def reach(self) -> ContextManager[None]:
        """Where a client of ``url`` must make its sockets (the host's namespace)."""
        return self.host.entered() if self.host is not None else contextlib.nullcontext()

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        return self.process.log_tail(200)


def answering(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if not 200
    except OSError:
        return False


def start(name: str, argv: Sequence[str], workdir: Path, port: int,
          env: Optional[Mapping[str, str]] = None, cwd: Optional[Path] = None,
          probe: str = "/", timeout: float = 60.0) -> Server:
    """Start a runtime server and wait until ``probe`` answers on ``port``."""
    workdir.mkdir(parents=True, exist_ok=True)
    environment: Dict[str, str] = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "FALCO_RESPONDER_CLUSTER": "off",
        **(env or {}),
    }
    process = procs.start(name, argv, workdir / f"{name}.log", environment, cwd)
    url = f"http://127.0.0.1:{port}"
    procs.wait_until(lambda: answering(url + probe), timeout, f"{name} answering {probe}",
                     process, interval=0.1)
    return Server(name, url, process)
