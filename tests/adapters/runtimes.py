"""Each adapter runs in its real runtime server, in a virtualenv of its own.

The runtimes need incompatible ``cloudevents`` versions (and Kubeless needs Python 3.8),
so each gets a venv built once per requirement set under
``~/.cache/falco-responder/peers/venvs/``; an interrupted build is never reused. The repository
root goes on ``PYTHONPATH`` so every runtime imports this checkout's core.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Dict, List, Mapping, Optional, Sequence

from tests.testbed import procs
from tests.testbed.netns import Host
from tests.testbed.peers import cache_root
from tests.testbed.python import interpreter

REPO = Path(__file__).resolve().parents[2]

def requirements(adapter: Path) -> List[str]:
    """The requirement lines of an adapter's requirements.txt."""
    lines = (adapter / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def venv(name: str, python: str, requirements: Sequence[str]) -> Path:
    """A venv with ``requirements`` installed, built once per (python, requirements)."""
    key = hashlib.sha256("\n".join([python, *requirements]).encode()).hexdigest()[:12]
    root = cache_root() / "venvs"
    target = root / f"{name}-py{python}-{key}"
    if (target / ".complete").is_file():
        return target
    # Built in place (venv scripts hard-code their path); only the marker makes it usable,
    # so an interrupted build is removed and redone.
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    print(f"[venv] {target.name}: creating with Python {python} and "
          f"{len(requirements)} requirement(s)", file=sys.stderr, flush=True)
    subprocess.run([interpreter(python), "-m", "venv", str(target)], check=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    done = subprocess.run([*pip, *requirements], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise RuntimeError(f"pip could not install {list(requirements)} for {name} on Python "
                           f"{python}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    (target / ".complete").write_text("\n".join(requirements) + "\n")
    return target


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
