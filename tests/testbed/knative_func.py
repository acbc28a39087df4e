"""The function as Knative func builds and runs it: func's own Python scaffolding (from the
knative/func release in ``../shared/peers/``) around this repository, served by func-python.

func's host builder writes ``.func/build/`` beside the function: the scaffolding's
``service/main.py`` and ``pyproject.toml`` (which depends on ``function @ {root:uri}/f``),
a link ``f`` to the function's root, then runs ``pip install . --target lib``; the image
runs ``python service/main.py`` with ``PYTHONPATH=lib`` and ``LISTEN_ADDRESS=[::]:8080``.
:func:`build` does exactly that, once per content of what gets installed, and
:func:`start` runs it the way the image does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from tests.testbed import peers, private_root, procs, python
from tests.testbed.netns import Host, accepts, wait_connectable

REPO = peers.REPO
SCAFFOLDING = "templates/python/scaffolding/instanced-cloudevents"
PYTHON = "3.12"
#: Builds kept in the cache: the last few used (several checkouts may share the machine).
KEEP_BUILDS = 4
#: What `pip install .` copies into lib: the distribution's packages and metadata.
INSTALLED = ("pyproject.toml", "function", "adapters")


def interpreter() -> str:
    """The CPython of func's Python builder image."""
    return python.interpreter(PYTHON)


def _content_key(root: Path) -> str:
    """The checkout (its ``f`` link points there) and the content of what gets installed."""
    digest = hashlib.sha256(str(root.resolve()).encode() + b"\0")
    for name in INSTALLED:
        path = root / name
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def build(root: Path = REPO) -> Path:
    """``.func/build`` for ``root`` as func's host builder leaves it; returns that folder."""
    scaffolding = peers.source_dir("knative-func") / SCAFFOLDING
    key = _content_key(root)
    target = peers.cache_root() / "func-build" / key
    if (target / ".complete").is_file():
        (target / ".complete").touch()  # recently used: kept by _prune
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(scaffolding, target, symlinks=True)
        (target / "f").unlink()
        (target / "f").symlink_to(root, target_is_directory=True)
        print(f"[func] building {target} as func's host builder does", file=sys.stderr,
              flush=True)
        steps: List[List[str]] = [
            [interpreter(), "-m", "venv", ".venv"],
            [".venv/bin/pip", "install", "--quiet", "--upgrade", "pip"],
            [".venv/bin/pip", "install", "--quiet", ".", "--target", "lib"],
        ]
        for step in steps:
            done = subprocess.run(step, cwd=str(target), capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"func's host build step {' '.join(step)} failed:\n"
                                   f"{done.stdout[-2000:]}{done.stderr[-3000:]}")
        (target / ".complete").write_text(key + "\n")
    _prune(target.parent)
    return target


def _prune(folder: Path, keep: int = KEEP_BUILDS) -> None:
    """Remove all but the ``keep`` builds used last (each is ~180 MB; every change of the
    installed files, and every checkout, makes a new one)."""
    builds = sorted((b for b in folder.iterdir() if (b / ".complete").is_file()),
                    key=lambda b: (b / ".complete").stat().st_mtime, reverse=True)
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        (folder / f"{old.name}.lock").unlink(missing_ok=True)


def command(build_dir: Path) -> List[str]:
    """What the image runs: ``python /func/.func/build/service/main.py``."""
    return [interpreter(), str(build_dir / "service" / "main.py")]


def environment(build_dir: Path, port: int = 8080) -> Dict[str, str]:
    """The image's environment (no PATH to the venv: the image's python runs it)."""
    return {"PYTHONPATH": str(build_dir / "lib"), "LISTEN_ADDRESS": f"[::]:{port}",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
            "HOME": str(build_dir)}


def start(workdir: Path, env: Mapping[str, str], host: Optional[Host] = None,
          port: int = 8080, build_dir: Optional[Path] = None,
          timeout: float = 60.0, volumes: Optional[Mapping[str, Path]] = None
          ) -> procs.Process:
    """Run the built function as its image would, on ``host`` (or this machine's loopback
    when None), with ``volumes`` (path in the container -> folder here) mounted in a private
    root, and return once it accepts connections on ``port``."""
    build_dir = build_dir or build()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = command(build_dir)
    if volumes:
        argv = private_root.wrap(argv, workdir, volumes, cwd=str(build_dir))
    full_env = {**environment(build_dir, port), **env}
    if host is not None:
        argv = host.exec_argv(argv)
    process = procs.start("knative-func", argv, workdir / "knative-func.log", env=full_env,
                          cwd=build_dir)
    if host is not None:
        wait_connectable(host, port, timeout, "func-python listening", process)
    else:
        procs.wait_until(lambda: accepts("127.0.0.1", port), timeout,
                         "func-python listening", process)
    return process

