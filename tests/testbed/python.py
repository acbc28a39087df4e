"""Which CPython runs a runtime: the one a platform's image has, by ``major.minor``, and the
virtualenvs built on it.

The runtimes need incompatible ``cloudevents`` versions (and Kubeless needs Python 3.8), so
each gets a venv built once per requirement set under
``~/.cache/falco-responder/peers/venvs/``; an interrupted build is never reused.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from tests.testbed.peers import cache_root

PYENV = Path.home() / ".pyenv" / "versions"


def interpreter(version: str) -> str:
    """A CPython ``major.minor``: pyenv's, else one on PATH; fails naming what is missing."""
    for candidate in sorted(PYENV.glob(f"{version}.*/bin/python{version}"), reverse=True):
        return str(candidate)
    found = shutil.which(f"python{version}")
    if found is None:
        raise RuntimeError(f"Python {version} is needed for this runtime and was not found "
                           f"(looked under {PYENV} and on PATH)")
    return found


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
    if requirements:
        done = subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install",
                               "--quiet", "--disable-pip-version-check", *requirements],
                              capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise RuntimeError(f"pip could not install {list(requirements)} for {name} on "
                               f"Python {python}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    (target / ".complete").write_text("\n".join(requirements) + "\n")
    return target
